"""Validators shared by the apps' models."""

from django.core.validators import ProhibitNullCharactersValidator

#: Free text a person writes may not hold a NUL character: PostgreSQL cannot store one
#: in a text column, so without this check the save would fail as a server error
#: instead of a message. A browser's form never sends one; a pasted or crafted text can.
no_nul = ProhibitNullCharactersValidator(
    message="The text holds a hidden control character (NUL) that cannot be saved: "
            "paste it again as plain text.")
