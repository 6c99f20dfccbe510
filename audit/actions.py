"""The one writer of the audit trail.

`record` is called inside the caller's transaction, so an entry commits or rolls
back with what it records; if the entry cannot be written the caller's action fails.
"""

import re
from dataclasses import dataclass

from django.db import transaction

from audit import chain, context
from audit.models import AuditAction, AuditEvent, Outcome

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Actor:
    """Who acted, as the audit trail remembers them."""

    user_id: int | None
    label: str
    agency: str = ""
    role: str = ""
    break_glass_id: int | None = None  # acting under emergency access (a CaseGrant)


def clean_text(value: str, limit: int) -> str:
    """One line, bounded: CR, LF and other control characters cannot forge entries."""
    return _CONTROL.sub(" ", value or "").strip()[:limit]


# No savepoint of its own: an entry that cannot be written fails the caller's whole
# transaction (nothing is recorded without its entry), so there is nothing to roll
# back to, and a savepoint would cost two more statements per entry.
@transaction.atomic(savepoint=False)
def record(
    *,
    actor: Actor | None,
    action: AuditAction,
    outcome: Outcome = Outcome.ALLOWED,
    object_type: str = "",
    object_id: object = "",
    case_id: int | None = None,
    reason: str = "",
) -> AuditEvent:
    ctx = context.current()
    event = AuditEvent(
        actor_id=actor.user_id if actor else None,
        actor_label=clean_text(actor.label if actor else "", 150),
        agency_label=clean_text(actor.agency if actor else "", 120),
        role_label=clean_text(actor.role if actor else "", 80),
        client_ip=ctx.client_ip,
        user_agent=clean_text(ctx.user_agent, 256),
        request_id=ctx.request_id,
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=clean_text(str(object_id), 64),
        case_id=case_id,
        reason=clean_text(reason, 500),
        break_glass_id=actor.break_glass_id if actor else None,
    )
    event.full_clean()
    # Chained to the entry before it, under the append lock (held to the end of the
    # caller's transaction, so the next entry cannot read a head that then rolls back).
    chain.lock_for_append()
    event.prev_hash = chain.head_hash()
    event.entry_hash = chain.entry_hash(
        event.prev_hash, {field: getattr(event, field) for field in chain.FIELDS})
    event.save(force_insert=True)
    return event
