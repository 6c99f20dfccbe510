"""Print the audit trail's current head, COUNT:HASH, to be kept somewhere the
application cannot write (then `audit_verify --head COUNT:HASH` detects removal of the
newest entries)."""

from django.core.management.base import BaseCommand

from audit import chain
from audit.models import AuditEvent


class Command(BaseCommand):
    help = "Print the audit trail's head (entry count and last hash) as COUNT:HASH."

    def handle(self, *args, **options):
        count = AuditEvent.objects.count()
        self.stdout.write(f"{count}:{chain.head_hash()}")
