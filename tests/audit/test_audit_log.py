"""The audit trail: append-only in the database itself, one line per entry whatever the
input, free of note text, written for every sign-in event, and in the same transaction
as what it records (so a failed audit write fails the action)."""

import datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit import db as audit_db
from audit.actions import Actor, clean_text, record
from audit.models import AuditAction, AuditEvent, Outcome
from casenotes.actions import (
    do_add_addendum,
    do_create_note,
    do_finalise_note,
    do_update_draft,
)
from casenotes.models import CaseNote
from casenotes.permissions import NotFound, policy
from teams.actions import do_save_agency
from teams.models import Agency, Role
from tests.factories import PASSWORD
from tests.helpers import AuditWatch, write_fingerprint

FORGED = "2026-01-01 09:00:00 bootstrap.admin Signed in"


def _one_entry(label="someone") -> AuditEvent:
    return record(actor=Actor(user_id=None, label=label), action=AuditAction.LOGIN_FAILED,
                  outcome=Outcome.DENIED, object_type="user")


def _refused(sql: str, params=()):
    """Run raw SQL that the triggers must refuse; the refusal names the table."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
        c.execute(sql, params)
    assert audit_db.MESSAGE in str(caught.value)


# --- append-only ---------------------------------------------------------------------

def test_raw_sql_update_of_an_audit_entry_is_refused(db):
    event = _one_entry()
    _refused(f"UPDATE {audit_db.TABLE} SET reason = %s WHERE id = %s", ["edited", event.pk])
    _refused(f"UPDATE {audit_db.TABLE} SET actor_label = 'nobody'")
    assert AuditEvent.objects.get(pk=event.pk).reason == ""
    assert AuditEvent.objects.get(pk=event.pk).actor_label == "someone"


def test_raw_sql_delete_of_an_audit_entry_is_refused(db):
    event = _one_entry()
    _refused(f"DELETE FROM {audit_db.TABLE} WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_deleting_every_audit_entry_at_once_is_refused(db):
    # SQLite's TRUNCATE equivalent: an unqualified DELETE (the "truncate optimisation").
    _one_entry()
    _one_entry()
    _refused(f"DELETE FROM {audit_db.TABLE}")
    assert AuditEvent.objects.count() == 2


@pytest.mark.requires_postgres  # SQLite has no TRUNCATE; its equivalent is tested above
def test_raw_sql_truncate_of_the_audit_table_is_refused(db):
    assert connection.vendor == "postgresql"
    _one_entry()
    _refused(f"TRUNCATE {audit_db.TABLE}")
    assert AuditEvent.objects.count() == 1


def test_searches_by_person_and_by_case_have_one_index_each_and_the_triggers_stay(db):
    """Each search by person or by case has its composite index (newest first); neither
    column has an index of its own, which every entry would write and no search read.
    Those were dropped (audit 0018) without rebuilding the table, so the append-only
    triggers are still there."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, audit_db.TABLE)
    indexed = {tuple(c["columns"]) for c in constraints.values()
               if c["index"] and not c["primary_key"]}
    assert {("actor_id", "occurred_at", "id"), ("case_id", "occurred_at", "id")} <= indexed
    assert not {("actor_id",), ("case_id",)} & indexed
    event = _one_entry()
    _refused(f"UPDATE {audit_db.TABLE} SET reason = %s WHERE id = %s", ["edited", event.pk])


def test_orm_update_and_delete_of_audit_entries_are_refused(db):
    event = _one_entry()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.reason = "rewritten"
    with pytest.raises(DatabaseError), transaction.atomic():
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


# --- one line per entry ----------------------------------------------------------------

def _single_line(*values) -> None:
    for value in values:
        text = str(value)
        for ch in ("\r", "\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"):
            assert ch not in text, f"{ch!r} in {text!r}"


def test_cr_lf_in_a_reason_cannot_forge_an_entry(db):
    event = record(actor=Actor(user_id=1, label="amara.okafor"), action=AuditAction.CASE_VIEWED,
                   reason=f"supervision prep\r\n{FORGED}\n{FORGED}\u2028{FORGED}")
    stored = AuditEvent.objects.get(pk=event.pk)
    _single_line(stored.reason, str(stored))
    assert stored.reason.startswith("supervision prep ")
    assert FORGED in stored.reason  # kept, but as text on the same line


def test_clean_text_flattens_control_characters_and_bounds_length():
    assert clean_text("a\r\nb\tc\x00d\x1be", 100) == "a b c d e"
    assert clean_text("x" * 600, 500) == "x" * 500
    assert clean_text(None, 10) == ""
    # Short values are remembered, long ones are not: the same answer either way, and
    # a remembered value is bounded by each call's own limit.
    for value in ("Sam\r\nAdmin", ("y\n" * 400)):
        assert clean_text(value, 8) == clean_text(value, 8) == value.replace("\r\n", " ").replace(
            "\n", " ").strip()[:8]
    assert clean_text("Sam Achterberg", 3) == "Sam"
    assert clean_text("Sam Achterberg", 150) == "Sam Achterberg"


def _login_url():
    try:
        return reverse("login")
    except NoReverseMatch:
        return None


def _fail_login(client, username):
    url = _login_url()
    if url is not None:
        response = client.post(url, {"username": username, "password": "wrong-password-123"},
                               HTTP_USER_AGENT=f"Mozilla/5.0\r\n{FORGED}")
        assert response.status_code == 200  # the form again, with its error
    else:  # pragma: no cover - only before the sign-in page exists
        from django.contrib.auth import authenticate

        assert authenticate(username=username, password="wrong-password-123") is None


def test_cr_lf_in_a_failed_login_username_cannot_forge_an_entry(db, client):
    watch = AuditWatch()
    _fail_login(client, f"mallory\r\n{FORGED}")
    event = watch.one(AuditAction.LOGIN_FAILED)
    _single_line(*(getattr(event, f.attname) for f in AuditEvent._meta.fields), str(event))
    assert event.actor_label.startswith("mallory ")
    assert (event.actor_id, event.outcome) == (None, Outcome.DENIED)


def test_cr_lf_in_a_requested_id_cannot_forge_a_denial_entry(world):
    watch = AuditWatch()
    with pytest.raises(NotFound):
        policy.access_case(world.user(Role.IG_OFFICER), f"{world.case.pk}\r\n{FORGED}")
    event = watch.one(AuditAction.ACCESS_DENIED)
    _single_line(event.object_id, event.reason, str(event))


# --- no note text in the trail -------------------------------------------------------

def test_no_note_body_ever_reaches_the_audit_trail(world):
    markers = [f"ZEBRA-{n}-OCTOPUS" for n in range(6)]
    sw, tm = world.social_worker, world.team_manager
    probation = world.user(Role.PROBATION_OFFICER)
    draft = world.draft(sw, body=f"Home visit. {markers[0]}")
    draft = do_update_draft(
        acting_user=sw, note=draft, expected_version=1, note_type=draft.note_type,
        occurred_at=draft.occurred_at, body=f"Home visit, revised. {markers[1]}",
        sensitivity=draft.sensitivity)
    do_finalise_note(acting_user=sw, note=draft, expected_version=draft.version)
    restricted = world.restricted_note(probation, body=f"Licence breach risk. {markers[2]}")
    sealed = world.sealed_note(world.user(Role.DA_VICTIM_WORKER), readers=[tm],
                               body=f"New address: 4 Elm Row. {markers[3]}")
    do_add_addendum(acting_user=tm, note=draft, body=f"Correction. {markers[4]}")
    do_create_note(acting_user=sw, case=world.case, note_type=CaseNote.NoteType.PHONE_CALL,
                   occurred_at=timezone.now(), body=f"Called school. {markers[5]}", finalise=True)
    # Reads and refusals write entries too.
    for note in (restricted, sealed):
        access = policy.case_access(sw, world.case)
        with pytest.raises(NotFound):
            policy.access_note(access, note.pk)
    policy.access_note(policy.case_access(tm, world.case), sealed.pk)

    rows = list(AuditEvent.objects.values())
    assert len(rows) > 20
    text = "\n".join(str(value) for row in rows for value in row.values())
    for marker in markers:
        assert marker not in text
    for fragment in ("Elm Row", "Licence breach", "Called school", "Home visit"):
        assert fragment not in text


# --- sign-in events -----------------------------------------------------------------

def test_login_logout_and_failed_login_each_leave_one_entry(world, client):
    user = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    url = _login_url()

    watch = AuditWatch()
    if url is not None:
        response = client.post(url, {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302
    else:  # pragma: no cover
        assert client.login(username=user.username, password=PASSWORD)
    assert watch.actions() == [AuditAction.LOGIN]
    login = watch.one(AuditAction.LOGIN)
    assert (login.actor_id, login.actor_label, login.outcome) == (
        user.pk, user.username, Outcome.ALLOWED)
    assert login.agency_label == world.agency_of(user).name
    if url is not None:
        assert login.client_ip == "127.0.0.1" and login.request_id

    watch = AuditWatch()
    if url is not None:
        client.post(reverse("logout"))
    else:  # pragma: no cover
        client.logout()
    assert watch.actions() == [AuditAction.LOGOUT]
    assert watch.one(AuditAction.LOGOUT).actor_id == user.pk

    watch = AuditWatch()
    _fail_login(client, user.username)
    assert watch.actions() == [AuditAction.LOGIN_FAILED]
    failed = watch.one(AuditAction.LOGIN_FAILED)
    assert (failed.actor_id, failed.actor_label, failed.outcome) == (
        None, user.username, Outcome.DENIED)
    every_value = " ".join(str(v) for row in AuditEvent.objects.values() for v in row.values())
    assert "wrong-password-123" not in every_value and PASSWORD not in every_value


# --- same transaction ----------------------------------------------------------------

def _audit_store_down(*args, **kwargs):
    raise DatabaseError("audit store unavailable")


def test_a_note_is_not_saved_when_its_audit_entry_cannot_be_written(world, monkeypatch):
    before = write_fingerprint()
    monkeypatch.setattr("audit.actions.AuditEvent.save", _audit_store_down)
    with pytest.raises(DatabaseError):
        do_create_note(acting_user=world.social_worker, case=world.case,
                       note_type=CaseNote.NoteType.HOME_VISIT,
                       occurred_at=timezone.now() - datetime.timedelta(hours=1),
                       body="Must not be saved without its audit entry.")
    assert write_fingerprint() == before
    assert not CaseNote.objects.filter(body__startswith="Must not be saved").exists()


def test_a_finalised_note_is_not_saved_when_its_audit_entries_cannot_be_written(world):
    # A finalised note's two entries go in one INSERT: the database refusing it fails
    # the save (whichever way the batch is written on this database).
    refused = []

    def audit_table_refuses_inserts(execute, sql, params, many, context):
        if sql.lstrip().startswith('INSERT INTO "audit_auditevent"'):
            refused.append(sql)
            raise DatabaseError("the audit table cannot be written")
        return execute(sql, params, many, context)

    before = write_fingerprint()
    with connection.execute_wrapper(audit_table_refuses_inserts), pytest.raises(DatabaseError):
        do_create_note(acting_user=world.social_worker, case=world.case,
                       note_type=CaseNote.NoteType.HOME_VISIT,
                       occurred_at=timezone.now() - datetime.timedelta(hours=1),
                       body="Must not be saved without its audit entries.", finalise=True)
    assert len(refused) == 1
    assert write_fingerprint() == before


def test_no_organisation_change_is_saved_when_its_audit_entry_cannot_be_written(
    world, monkeypatch
):
    monkeypatch.setattr("audit.actions.AuditEvent.save", _audit_store_down)
    with pytest.raises(DatabaseError):
        do_save_agency(acting_user=world.bootstrap_admin, agency=Agency(
            name="Unaudited Agency", short_name="Unaudited", kind=Agency.Kind.OTHER))
    assert not Agency.objects.filter(name="Unaudited Agency").exists()
    assert not Agency.history.filter(name="Unaudited Agency").exists()


def test_the_audit_entry_rolls_back_with_a_write_that_fails_after_it(world, monkeypatch):
    def notice_fails(*args, **kwargs):
        raise RuntimeError("queueing the notice failed")

    monkeypatch.setattr("casenotes.actions.notes._publish", notice_fails)
    before = write_fingerprint()
    with pytest.raises(RuntimeError):
        world.standard_note(world.social_worker)
    assert write_fingerprint() == before  # note, history and audit entry all rolled back
