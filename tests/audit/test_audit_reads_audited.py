"""Reading the audit trail is itself audited: the IG officer's emergency-access queue,
and the operators' `audit_verify` and `audit_head` commands, each leave one entry."""

import io

from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit import chain
from audit import db as audit_db
from audit.actions import Actor, record
from audit.models import AuditAction, AuditEvent, Outcome
from teams.models import Role
from tests.audit.test_chain import _triggers_lifted
from tests.helpers import AuditWatch, assert_audit


def _entries(count: int) -> list[AuditEvent]:
    return [record(actor=Actor(user_id=7, label="amara.okafor"), action=AuditAction.CASE_VIEWED,
                   object_type="case", object_id=n, case_id=n) for n in range(1, count + 1)]


def _run(command: str, *args) -> tuple[int, str]:
    """Exit status and everything the command printed."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def _assert_chained_to(event: AuditEvent, previous_hash: str) -> None:
    """`event`, as stored, follows `previous_hash` and its own hash is right."""
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.prev_hash == previous_hash
    assert stored.entry_hash == chain.entry_hash(
        previous_hash, {f: getattr(stored, f) for f in chain.FIELDS})


def _assert_command_line_entry(event: AuditEvent, action: AuditAction) -> None:
    assert_audit(event, action=action, actor=None, object_type="audit_trail")
    assert event.actor_label == "command line"


# --- the emergency-access queue -----------------------------------------------------------

def test_opening_the_emergency_access_queue_leaves_one_entry_naming_the_ig_officer(world):
    officer = world.user(Role.IG_OFFICER)
    client = Client()
    client.force_login(officer)
    watch = AuditWatch()
    assert client.get(reverse("audit:break_glass_queue")).status_code == 200
    event = watch.one(AuditAction.BREAK_GLASS_QUEUE_VIEWED)
    assert_audit(event, action=AuditAction.BREAK_GLASS_QUEUE_VIEWED, actor=officer,
                 object_type="break_glass")
    assert event.actor_label == officer.username and event.reason == "page 1 of 1"


# --- audit_verify -------------------------------------------------------------------------

def test_audit_verify_leaves_one_chained_entry_after_its_walk_with_the_verdict(db):
    entries = _entries(3)
    watch = AuditWatch()
    code, output = _run("audit_verify")
    assert code == 0 and "intact: 3 entries" in output  # its own entry is not counted
    assert watch.actions() == [AuditAction.AUDIT_VERIFIED]
    event = watch.one(AuditAction.AUDIT_VERIFIED)
    _assert_command_line_entry(event, AuditAction.AUDIT_VERIFIED)
    assert event.reason == (f"manage.py audit_verify: audit trail intact: 3 entries, "
                            f"head {entries[-1].entry_hash}")
    _assert_chained_to(event, entries[-1].entry_hash)
    # The next walk covers the entry, and counts it.
    code, output = _run("audit_verify")
    assert code == 0 and "intact: 4 entries" in output


def test_audit_verify_with_a_saved_head_names_the_head_in_its_entry(db):
    entries = _entries(2)
    head = f"2:{entries[-1].entry_hash}"
    watch = AuditWatch()
    assert _run("audit_verify", "--head", head)[0] == 0
    event = watch.one(AuditAction.AUDIT_VERIFIED)
    assert event.reason.startswith(f"manage.py audit_verify --head {head}: audit trail intact: "
                                   "2 entries")


def test_audit_verify_of_a_changed_trail_still_records_its_read_with_the_bad_entry(db):
    entries = _entries(4)
    target = entries[1]
    with _triggers_lifted() as cursor:
        cursor.execute(f"UPDATE {audit_db.TABLE} SET actor_label = %s WHERE id = %s",
                       ["someone.else", target.pk])
    watch = AuditWatch()
    code, output = _run("audit_verify")
    assert code == 1 and f"entry {target.pk}: its content was changed" in output
    assert watch.actions() == [AuditAction.AUDIT_VERIFIED]
    event = watch.one(AuditAction.AUDIT_VERIFIED)
    _assert_command_line_entry(event, AuditAction.AUDIT_VERIFIED)
    assert event.outcome == Outcome.ALLOWED  # the read was made; the verdict is the reason
    assert event.reason == (f"manage.py audit_verify: audit trail NOT intact: entry {target.pk}: "
                            "its content was changed (2 entries walked)")
    _assert_chained_to(event, entries[-1].entry_hash)


# --- audit_head ---------------------------------------------------------------------------

def test_audit_head_leaves_one_chained_entry_after_the_head_it_gives_out(db):
    entries = _entries(3)
    watch = AuditWatch()
    code, output = _run("audit_head")
    head = output.strip()
    assert code == 0 and head == f"3:{entries[-1].entry_hash}"  # the head before its entry
    assert watch.actions() == [AuditAction.AUDIT_HEAD_EXPORTED]
    event = watch.one(AuditAction.AUDIT_HEAD_EXPORTED)
    _assert_command_line_entry(event, AuditAction.AUDIT_HEAD_EXPORTED)
    assert event.reason == f"manage.py audit_head: head {head}"
    _assert_chained_to(event, entries[-1].entry_hash)
    # The head given out still verifies with the entry after it.
    assert _run("audit_verify", "--head", head)[0] == 0
