"""A database fault in the middle of saving a note leaves the note, its history and its
audit entry all absent, and the user sees a clear error with their text still in the
form; saving notes from pages is limited per person, with a clear message."""

import datetime

import pytest
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from casenotes.models import Addendum, CaseNote

TYPED = "Visited after school; Ellie showed me her drawing of the new flat (FAULT-7741)."


def note_post(**overrides):
    moment = timezone.localtime() - datetime.timedelta(hours=1)
    data = {"note_type": "home_visit", "occurred_day": str(moment.day),
            "occurred_month": str(moment.month), "occurred_year": str(moment.year),
            "occurred_time": moment.strftime("%H:%M"), "body": TYPED,
            "sensitivity": "standard", "intent": "finalise"}
    data.update(overrides)
    return data


@pytest.fixture
def client(world):
    client = Client()
    client.force_login(world.social_worker)
    return client


def fail_writing(monkeypatch, action: AuditAction) -> None:
    """A database fault at the moment the audit entry of `action` is written (after the
    record and its history rows): a fault in the middle of the save."""
    import audit.actions

    real = audit.actions._write

    def write(events):
        if any(entry["action"] == action for entry in events):
            raise DatabaseError("the database went away")
        return real(events)

    monkeypatch.setattr(audit.actions, "_write", write)


def test_a_database_fault_while_saving_keeps_nothing_half_written_and_the_text_in_the_form(
        world, client, monkeypatch):
    """The transaction takes the note and its history back with the failed audit entry."""
    fail_writing(monkeypatch, AuditAction.NOTE_CREATED)
    notes_before = CaseNote.objects.count()
    history_before = CaseNote.history.count()
    audit_before = AuditEvent.objects.filter(action=AuditAction.NOTE_CREATED).count()

    response = client.post(reverse("casenotes:note_create", args=[world.case.pk]), note_post())

    page = response.content.decode()
    assert response.status_code == 503
    assert "could not be saved because of a fault" in page and "Nothing was saved" in page
    assert "FAULT-7741" in page  # the text is still in the form
    assert CaseNote.objects.count() == notes_before
    assert CaseNote.history.count() == history_before
    assert AuditEvent.objects.filter(action=AuditAction.NOTE_CREATED).count() == audit_before
    monkeypatch.undo()
    # And once the fault has passed, the same form saves.
    again = client.post(reverse("casenotes:note_create", args=[world.case.pk]), note_post())
    assert again.status_code == 302 and CaseNote.objects.filter(body=TYPED).count() == 1


def test_a_database_fault_while_adding_an_addendum_is_reported_and_nothing_is_kept(
        world, client, monkeypatch):
    note = world.standard_note(world.social_worker)
    fail_writing(monkeypatch, AuditAction.ADDENDUM_ADDED)
    response = client.post(reverse("casenotes:addendum_create", args=[world.case.pk, note.pk]),
                           {"body": "Correction: it was Tuesday (FAULT-2)."})
    assert response.status_code == 503 and "FAULT-2" in response.content.decode()
    assert not Addendum.objects.filter(note=note).exists()


def test_saving_notes_from_pages_is_limited_per_person_with_a_clear_message(world, client, settings):
    settings.NOTE_SAVES_PER_MINUTE = 3
    url = reverse("casenotes:note_create", args=[world.case.pk])
    for number in range(3):
        assert client.post(url, note_post(body=f"Note {number}.")).status_code == 302
    refused = client.post(url, note_post(body="One too many (LIMIT-9)."))
    page = refused.content.decode()
    assert refused.status_code == 429
    assert "You have saved 3 notes in the last minute" in page and "LIMIT-9" in page
    assert not CaseNote.objects.filter(body="One too many (LIMIT-9).").exists()
    # Someone else is not held back by it.
    other = Client()
    other.force_login(world.user(world.memberships[world.social_worker.pk].role, 1))
    assert other.post(url, note_post(body="A colleague's note.")).status_code == 302


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_by_postgresql_mid_save_leaves_nothing_and_the_page_says_so(
        world, client, monkeypatch):
    """A real fault: PostgreSQL terminates the session's connection just as the note's
    audit entry is written (after the note and its history rows). The transaction dies
    with it; the page reconnects, says so and keeps the text."""
    from django.db import connection, connections

    import audit.actions

    real = audit.actions._write
    killed = []

    def write(events):
        if not killed and any(entry["action"] == AuditAction.NOTE_CREATED for entry in events):
            pid = connection.connection.info.backend_pid
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            finally:
                other.close()
            killed.append(pid)
        return real(events)

    monkeypatch.setattr(audit.actions, "_write", write)
    notes_before = CaseNote.objects.count()
    history_before = CaseNote.history.count()

    response = client.post(reverse("casenotes:note_create", args=[world.case.pk]), note_post())

    assert killed, "the fault was not injected"
    page = response.content.decode()
    assert response.status_code == 503 and "FAULT-7741" in page
    assert "could not be saved because of a fault" in page
    assert CaseNote.objects.count() == notes_before
    assert CaseNote.history.count() == history_before
    assert not AuditEvent.objects.filter(action=AuditAction.NOTE_CREATED,
                                         actor_id=world.social_worker.pk).exists()
