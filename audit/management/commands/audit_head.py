"""Print the audit trail's current head, COUNT:HASH, to be kept somewhere the
application cannot write (then `audit_verify --head COUNT:HASH` detects removal of the
newest entries).

Reading the trail is itself audited: after the head is read (so it is the head before
this command's own entry), one `AUDIT_HEAD_EXPORTED` entry records the head given out,
and only then is it printed.
"""

from django.core.management.base import BaseCommand

from audit import chain
from audit.actions import COMMAND_LINE, record
from audit.models import AuditAction, AuditEvent


class Command(BaseCommand):
    help = "Print the audit trail's head (entry count and last hash) as COUNT:HASH."

    def handle(self, *args, **options):
        # The last entry first, then the entries up to it: an entry appended between the
        # two reads cannot make the count and the hash disagree.
        last = AuditEvent.objects.order_by("-id").values_list("id", "entry_hash").first()
        if last is None:
            head = f"0:{chain.GENESIS}"
        else:
            last_id, last_hash = last
            head = f"{AuditEvent.objects.filter(id__lte=last_id).count()}:{last_hash}"
        record(actor=COMMAND_LINE, action=AuditAction.AUDIT_HEAD_EXPORTED, object_type="audit_trail",
               reason=f"manage.py audit_head: head {head}")
        self.stdout.write(head)
