"""Walk the audit trail's hash chain and name the first entry that does not verify.

    manage.py audit_verify
    manage.py audit_verify --head 12345:9f86d08...   (a head saved by audit_head)

Exit status 0 when the chain is intact (and still holds the saved head), 1 when not.
"""

import re
import sys

from django.core.management.base import BaseCommand, CommandError

from audit import chain

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
        if verdict.ok:
            self.stdout.write(f"audit trail intact: {verdict.count} entries, head {verdict.head}")
            return
        where = f"entry {verdict.bad_id}" if verdict.bad_id is not None else "the trail"
        self.stderr.write(f"audit trail NOT intact: {where}: {verdict.problem} "
                          f"({verdict.count} entries walked)")
        sys.exit(1)
