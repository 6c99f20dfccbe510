"""The audit trail's hash chain: each entry carries SHA-256 over its own canonical
content and the previous entry's hash, so changing, removing or reordering any entry
breaks every hash after it, and an exported head (count and last hash) shows when the
newest entries have gone.

Appends are serialised: on PostgreSQL a transaction-scoped advisory lock is taken
before the previous hash is read, and held until the appending transaction ends; on
SQLite every write transaction already holds the database's one write lock from BEGIN
(`transaction_mode = IMMEDIATE`). Actions lock the rows they change before they write
their first audit entry, so the chain lock is always the last lock taken and cannot
deadlock against a row lock.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass

from django.db import connection

from workspace.prepared import Prepared

GENESIS = "0" * 64
#: pg_advisory_xact_lock key for appends ("audit" in ASCII).
LOCK_KEY = 0x6175646974

#: The fields an entry's hash covers, in order. The id is not among them (it is given by
#: the database on insert); each entry's place is fixed by the previous entry's hash.
FIELDS = ("occurred_at", "actor_id", "actor_label", "agency_label", "role_label", "client_ip",
          "user_agent", "request_id", "action", "outcome", "object_type", "object_id",
          "case_id", "reason", "break_glass_id")


def canonical(values: dict) -> bytes:
    """One entry as bytes: JSON with fixed keys and order; times as UTC ISO 8601."""
    out = {}
    for field in FIELDS:
        value = values[field]
        if field == "occurred_at":
            value = value.astimezone(datetime.UTC).isoformat(timespec="microseconds")
        out[field] = value
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=str).encode()


def entry_hash(prev_hash: str, values: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(values)).hexdigest()


def lock_for_append() -> None:
    """Serialise appends until the current transaction ends (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _newest_hash():
    from audit.models import AuditEvent

    return AuditEvent.objects.order_by("-id").values_list("entry_hash")[:1]


# Read by every audit entry written, so prepared (compiled once: workspace.prepared).
_HEAD = Prepared(_newest_hash)


def head_hash() -> str:
    rows = _HEAD.rows()
    return rows[0][0] if rows else GENESIS


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int  # entries walked
    head: str  # the last entry's hash (GENESIS when empty)
    bad_id: int | None = None  # the first entry that does not verify
    problem: str = ""


def verify(*, expected_count: int | None = None, expected_hash: str | None = None,
           batch: int = 5000) -> Verdict:
    """Walk the whole chain in id order. With a saved head (count and hash), also check
    that the entry at that position still has that hash: the newest entries cannot be
    removed unnoticed."""
    from audit.models import AuditEvent

    prev, count, last_id = GENESIS, 0, 0
    hash_at_expected = None
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")
                    .values("id", "prev_hash", "entry_hash", *FIELDS)[:batch])
        if not rows:
            break
        for row in rows:
            count += 1
            if row["prev_hash"] != prev:
                return Verdict(False, count, prev, row["id"],
                               "does not follow the entry before it (an entry before it was "
                               "removed, inserted or changed)")
            if entry_hash(prev, row) != row["entry_hash"]:
                return Verdict(False, count, prev, row["id"], "its content was changed")
            prev = row["entry_hash"]
            if expected_count is not None and count == expected_count:
                hash_at_expected = prev
        last_id = rows[-1]["id"]
    if expected_count is not None:
        if count < expected_count:
            return Verdict(False, count, prev, None,
                           f"the trail has {count} entries, fewer than the {expected_count} of "
                           "the saved head: the newest entries were removed")
        if expected_hash is not None and hash_at_expected != expected_hash:
            return Verdict(False, count, prev, None,
                           f"entry {expected_count} does not have the saved head's hash")
    return Verdict(True, count, prev)
