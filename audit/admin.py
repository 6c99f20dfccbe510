"""The audit trail is read in the IG pages (a later issue), not edited anywhere:
it is not registered in the administration site."""
