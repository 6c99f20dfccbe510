"""Walk the audit trail's hash chain and name the first entry that does not verify.

    manage.py audit_verify
    manage.py audit_verify --head 12345:9f86d08...   (a head saved by audit_head)

Exit status 0 when the chain is intact (and still holds the saved head), 1 when not.

Reading the trail is itself audited: once the walk is over (so it does not count its own
entry), one `AUDIT_VERIFIED` entry records the command and its verdict, chained like any
other. A trail that does not verify gets its entry too, after the verdict is printed.
"""

import re
import sys

from django.core.management.base import BaseCommand, CommandError

from audit import chain
from audit.actions import COMMAND_LINE, record
from audit.models import AuditAction

_HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (and, with --head, that no newest entry was removed)."

    def add_arguments(self, parser):
        parser.add_argument("--head", help="COUNT:HASH as printed by audit_head")

    def handle(self, *args, head=None, **options):
        expected_count = expected_hash = None
        if head:
            match = _HEAD.match(head.strip())
            if not match:
                raise CommandError("--head must be COUNT:HASH as printed by audit_head, "
                                   "e.g. 120:9f86d081884c7d65...")
            expected_count, expected_hash = int(match[1]), match[2]
        verdict = chain.verify(expected_count=expected_count, expected_hash=expected_hash)
        command = "audit_verify" + (f" --head {expected_count}:{expected_hash}" if head else "")
        if verdict.ok:
            summary = f"audit trail intact: {verdict.count} entries, head {verdict.head}"
            self.stdout.write(summary)
        else:
            where = f"entry {verdict.bad_id}" if verdict.bad_id is not None else "the trail"
            summary = (f"audit trail NOT intact: {where}: {verdict.problem} "
                       f"({verdict.count} entries walked)")
            self.stderr.write(summary)
        record(actor=COMMAND_LINE, action=AuditAction.AUDIT_VERIFIED, object_type="audit_trail",
               reason=f"manage.py {command}: {summary}")
        if not verdict.ok:
            sys.exit(1)
