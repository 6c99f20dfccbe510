"""Every case and note action: what it writes, the history row naming the acting user,
the audit entry, the live notice it queues, and the bad input it refuses unchanged."""

import asyncio
import datetime
import json
from contextlib import contextmanager
from html import unescape

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import dateformat, timezone
from django.utils.html import strip_tags

from audit.models import AuditAction, Outcome
from casenotes.actions import (
    AlreadyAdded,
    StaleVersion,
    do_add_addendum,
    do_add_person,
    do_close_case,
    do_create_case,
    do_create_note,
    do_finalise_note,
    do_update_draft,
)
from casenotes.models import Case, CaseEvent, CaseGroupObjectPermission, CaseNote, Person
from casenotes.permissions import NotFound, policy
from casenotes.rules import CLOSED_MESSAGE, FUTURE_MESSAGE
from teams.actions import do_end_membership
from teams.models import Role
from tests.helpers import AuditWatch, assert_audit, assert_history, write_fingerprint
from workspace.live import agency_group, case_group, managers_group, viewer_group

S = CaseNote.Sensitivity
MAX = settings.NOTE_BODY_MAX_LENGTH
FINALISED_MESSAGE = (
    "This note has been finalised and can no longer be changed. "
    "Add an addendum to correct or add to it."
)


def _note_kwargs(world, **overrides):
    kwargs = {
        "case": world.case, "note_type": CaseNote.NoteType.HOME_VISIT,
        "occurred_at": timezone.now() - datetime.timedelta(hours=3),
        "body": "Saw Ellie and Tom at home. Kayleigh engaged well; Dean was not present.",
        "sensitivity": S.STANDARD,
    }
    kwargs.update(overrides)
    return kwargs


def _draft_kwargs(note, **overrides):
    kwargs = {
        "expected_version": note.version, "note_type": note.note_type,
        "occurred_at": note.occurred_at, "body": note.body, "sensitivity": note.sensitivity,
    }
    kwargs.update(overrides)
    return kwargs


@contextmanager
def refused_unchanged(exception=ValidationError):
    """The block must raise `exception` and leave every row (and the audit trail) as it was."""
    before = write_fingerprint()
    with pytest.raises(exception) as caught:
        yield caught
    assert write_fingerprint() == before


# --- cases -----------------------------------------------------------------------------

def test_team_manager_creates_a_case_and_its_team_gets_access(world):
    tm, team = world.team_manager, world.fs_team
    watch = AuditWatch()
    case = do_create_case(
        acting_user=tm, reference="  FS-2025-0500 ", family_name=" Novak ",
        category=Case.Category.CHILD_IN_NEED, team=team, lead_practitioner=world.social_worker)

    assert (case.reference, case.family_name, case.status) == ("FS-2025-0500", "Novak", "open")
    assert_history(case, user=tm, history_type="+")
    assert_audit(watch.one(AuditAction.CASE_CREATED), action=AuditAction.CASE_CREATED,
                 actor=tm, case_id=case.pk, object_type="case", object_id=case.pk)
    grants = [e for e in watch.new() if e.action == AuditAction.PERMISSION_GRANTED]
    assert sorted(e.reason.split(" ")[0] for e in grants) == ["contribute_to_case", "view_case"]
    for event in grants:
        assert_audit(event, action=AuditAction.PERMISSION_GRANTED, actor=tm, case_id=case.pk,
                     object_id=case.pk)
    rows = CaseGroupObjectPermission.objects.filter(content_object=case)
    assert {(r.group_id, r.permission.codename) for r in rows} == {
        (team.group_id, "view_case"), (team.group_id, "contribute_to_case")}
    for row in rows:
        assert_history(row, user=tm, history_type="+")
    assert policy.case_access(world.user(Role.RECOVERY_WORKER), case) is not None


def test_only_the_teams_manager_may_create_a_case_for_it(world):
    with refused_unchanged(NotFound):
        do_create_case(acting_user=world.social_worker, reference="FS-2025-0501",
                       family_name="Novak", category=Case.Category.CHILD_IN_NEED,
                       team=world.fs_team)


def test_duplicate_case_reference_is_refused_with_a_field_message_and_the_refusal_recorded(world):
    """Nothing is written but the refusal's audit entry: it tells the manager that the
    case exists, so it is recorded against that case, by the action, whoever calls it."""
    before = write_fingerprint()
    watch = AuditWatch()
    with pytest.raises(ValidationError) as caught:
        do_create_case(acting_user=world.team_manager, reference=world.case.reference,
                       family_name="Novak", category=Case.Category.CHILD_IN_NEED,
                       team=world.fs_team)
    assert caught.value.message_dict == {"reference": [
        f"{world.case.reference} is already the reference of a case. "
        "Check the reference you were given."]}
    assert_audit(watch.one(AuditAction.ACCESS_DENIED), action=AuditAction.ACCESS_DENIED,
                 actor=world.team_manager, case_id=world.case.pk, object_type="case",
                 object_id=world.case.pk, outcome=Outcome.DENIED)
    assert len(watch.new()) == 1
    assert {**write_fingerprint(), "audit": before["audit"]} == before


def test_team_manager_closes_a_case(world):
    tm = world.team_manager
    watch = AuditWatch()
    closed = do_close_case(acting_user=tm, case=world.case)
    stored = Case.objects.get(pk=world.case.pk)
    assert (stored.status, stored.closed_on) == (Case.Status.CLOSED, timezone.localdate())
    assert_history(closed, user=tm, history_type="~")
    assert_audit(watch.one(AuditAction.CASE_CLOSED), action=AuditAction.CASE_CLOSED, actor=tm,
                 case_id=world.case.pk, object_type="case", object_id=world.case.pk)


def test_closing_date_before_the_case_opened_is_refused(world):
    with refused_unchanged() as caught:
        do_close_case(acting_user=world.team_manager, case=world.case,
                      closed_on=world.case.opened_on - datetime.timedelta(days=1))
    assert caught.value.message_dict == {
        "closed_on": ["The closing date must be on or after the date the case opened."]}


def test_a_practitioner_cannot_close_a_case(world):
    with refused_unchanged(NotFound):
        do_close_case(acting_user=world.social_worker, case=world.case)


def test_a_closed_case_cannot_be_closed_again(world):
    do_close_case(acting_user=world.team_manager, case=world.case,
                  closed_on=timezone.localdate() - datetime.timedelta(days=2))
    with refused_unchanged() as caught:
        do_close_case(acting_user=world.team_manager, case=world.case)
    assert caught.value.messages == ["This case is already closed."]


def test_practitioner_adds_a_person_to_the_family(world):
    sw = world.social_worker
    watch = AuditWatch()
    person = do_add_person(acting_user=sw, case=world.case, full_name=" Maureen Harper ",
                           role_in_family=Person.RoleInFamily.GRANDPARENT,
                           date_of_birth=datetime.date(1962, 4, 1))
    assert (person.full_name, person.case_id) == ("Maureen Harper", world.case.pk)
    assert_history(person, user=sw, history_type="+")
    assert_audit(watch.one(AuditAction.PERSON_ADDED), action=AuditAction.PERSON_ADDED, actor=sw,
                 case_id=world.case.pk, object_type="person", object_id=person.pk)


def test_person_cannot_be_added_to_a_closed_case(world):
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        do_add_person(acting_user=world.social_worker, case=world.case, full_name="Nan Harper",
                      role_in_family=Person.RoleInFamily.GRANDPARENT)
    assert caught.value.messages == [
        "This case is closed. People cannot be added to a closed case."]


def test_date_of_birth_in_the_future_is_refused(world):
    with refused_unchanged() as caught:
        do_add_person(acting_user=world.social_worker, case=world.case, full_name="Baby Harper",
                      role_in_family=Person.RoleInFamily.CHILD,
                      date_of_birth=timezone.localdate() + datetime.timedelta(days=1))
    assert caught.value.message_dict == {
        "date_of_birth": ["The date of birth must be today or in the past."]}


# --- notes: the writes ----------------------------------------------------------------

def test_create_draft_note_writes_note_history_and_audit(world):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    ellie = world.people["ellie"]
    watch = AuditWatch()
    note = do_create_note(acting_user=author, **_note_kwargs(
        world, body="  Kayleigh attended her appointment.  ", people=[ellie]))

    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.state, stored.version, stored.body) == (
        CaseNote.State.DRAFT, 1, "Kayleigh attended her appointment.")
    assert stored.author_id == author.pk
    assert stored.author_agency == world.agency_of(author)
    assert list(stored.people.all()) == [ellie]
    assert stored.finalised_at is None
    history = list(stored.history.order_by("history_id"))
    assert history[0].history_type == "+"
    assert {h.history_user_id for h in history} == {author.pk}
    event = watch.one(AuditAction.NOTE_CREATED)
    assert_audit(event, action=AuditAction.NOTE_CREATED, actor=author, case_id=world.case.pk,
                 object_type="note", object_id=note.pk)
    assert (event.agency_label, event.role_label) == (
        world.agency_of(author).name, "Mental-health practitioner")
    assert watch.actions() == [AuditAction.NOTE_CREATED]


def test_create_note_finalised_at_once_records_both_events(world):
    author = world.social_worker
    watch = AuditWatch()
    note = do_create_note(acting_user=author, finalise=True, **_note_kwargs(world))
    stored = CaseNote.objects.get(pk=note.pk)
    assert stored.state == CaseNote.State.FINAL and stored.finalised_at is not None
    assert_history(stored, user=author, history_type="+")
    assert watch.actions() == [AuditAction.NOTE_CREATED, AuditAction.NOTE_FINALISED]
    assert_audit(watch.one(AuditAction.NOTE_FINALISED), action=AuditAction.NOTE_FINALISED,
                 actor=author, case_id=world.case.pk, object_type="note", object_id=note.pk)


def test_sealed_note_keeps_its_named_readers(world):
    author = world.user(Role.DA_VICTIM_WORKER)
    reader = world.team_manager
    note = world.sealed_note(author, readers=[reader])
    assert list(CaseNote.objects.get(pk=note.pk).readers.all()) == [reader]
    assert {h.history_user_id for h in note.history.all()} == {author.pk}


def test_update_draft_bumps_version_with_history_and_audit(world):
    author = world.user(Role.PROBATION_OFFICER)
    note = world.draft(author, body="First thoughts.")
    watch = AuditWatch()
    updated = do_update_draft(acting_user=author, note=note, **_draft_kwargs(
        note, body="Dean attended supervision; licence conditions discussed.",
        is_significant=True, people=[world.people["dean"]]))

    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.version, stored.body, stored.state, stored.is_significant) == (
        2, "Dean attended supervision; licence conditions discussed.", CaseNote.State.DRAFT, True)
    assert list(stored.people.all()) == [world.people["dean"]]
    assert_history(updated, user=author, history_type="~")
    assert watch.actions() == [AuditAction.NOTE_UPDATED]
    assert_audit(watch.one(AuditAction.NOTE_UPDATED), action=AuditAction.NOTE_UPDATED,
                 actor=author, case_id=world.case.pk, object_type="note", object_id=note.pk)


def test_update_draft_with_finalise_records_update_and_finalisation(world):
    author = world.social_worker
    note = world.draft(author)
    watch = AuditWatch()
    do_update_draft(acting_user=author, note=note, finalise=True, **_draft_kwargs(note))
    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.state, stored.version) == (CaseNote.State.FINAL, 2)
    assert watch.actions() == [AuditAction.NOTE_UPDATED, AuditAction.NOTE_FINALISED]


def test_finalise_note_with_history_and_audit(world):
    author = world.user(Role.RECOVERY_WORKER)
    note = world.draft(author)
    watch = AuditWatch()
    finalised = do_finalise_note(acting_user=author, note=note, expected_version=1)
    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.state, stored.version, stored.body) == (CaseNote.State.FINAL, 2, note.body)
    assert stored.finalised_at is not None
    assert_history(finalised, user=author, history_type="~")
    assert watch.actions() == [AuditAction.NOTE_FINALISED]
    assert_audit(watch.one(AuditAction.NOTE_FINALISED), action=AuditAction.NOTE_FINALISED,
                 actor=author, case_id=world.case.pk, object_type="note", object_id=note.pk)


def test_addendum_to_a_final_note_with_history_and_audit(world):
    note = world.standard_note(world.social_worker)
    amender = world.team_manager
    watch = AuditWatch()
    addendum = do_add_addendum(acting_user=amender, note=note,
                               body="  Correction: the visit was on Tuesday 4 March.  ")
    assert (addendum.body, addendum.note_id, addendum.author_id) == (
        "Correction: the visit was on Tuesday 4 March.", note.pk, amender.pk)
    assert addendum.author_agency == world.agency_of(amender)
    assert CaseNote.objects.get(pk=note.pk).body == note.body  # the note itself never changes
    assert_history(addendum, user=amender, history_type="+")
    assert watch.actions() == [AuditAction.ADDENDUM_ADDED]
    assert_audit(watch.one(AuditAction.ADDENDUM_ADDED), action=AuditAction.ADDENDUM_ADDED,
                 actor=amender, case_id=world.case.pk, object_type="addendum",
                 object_id=addendum.pk)


# --- notes: bad input changes nothing ----------------------------------------------------

@pytest.mark.parametrize("body", ["", "   \n\t  "], ids=["empty", "whitespace"])
def test_empty_note_body_is_refused(world, body):
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(world, body=body))
    assert caught.value.message_dict == {"body": ["Enter the note."]}


def test_note_body_over_the_limit_is_refused_with_its_length(world):
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker,
                       **_note_kwargs(world, body="x" * (MAX + 1)))
    assert caught.value.message_dict == {
        "body": [f"The note must be {MAX:,} characters or fewer (it has {MAX + 1:,})."]}


def test_text_holding_a_nul_character_is_refused_with_a_message(world):
    """PostgreSQL cannot store a NUL: without the check each save failed as a server
    error there (and stored it on SQLite)."""
    message = "hidden control character (NUL)"
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(world, body="Seen.\x00"))
    assert message in caught.value.message_dict["body"][0]
    note = world.standard_note(world.social_worker)
    with refused_unchanged() as caught:
        do_add_addendum(acting_user=world.social_worker, note=note, body="Correction\x00")
    assert message in caught.value.message_dict["body"][0]
    with refused_unchanged() as caught:
        do_create_case(acting_user=world.team_manager, reference="FS-2025-0502",
                       family_name="No\x00vak", category=Case.Category.CHILD_IN_NEED,
                       team=world.fs_team)
    assert message in caught.value.message_dict["family_name"][0]


def test_note_body_at_the_limit_is_accepted(world):
    note = do_create_note(acting_user=world.social_worker, **_note_kwargs(world, body="x" * MAX))
    assert len(CaseNote.objects.get(pk=note.pk).body) == MAX


def test_occurred_at_in_the_future_is_refused(world):
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(
            world, occurred_at=timezone.now() + datetime.timedelta(hours=1)))
    assert caught.value.message_dict == {"occurred_at": [FUTURE_MESSAGE]}


def test_occurred_at_within_clock_skew_is_accepted(world):
    note = do_create_note(acting_user=world.social_worker, **_note_kwargs(
        world, occurred_at=timezone.now() + datetime.timedelta(seconds=30)))
    assert note.pk is not None


def test_note_on_a_closed_case_is_refused(world):
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(world))
    assert caught.value.message_dict == {NON_FIELD_ERRORS: [CLOSED_MESSAGE]}


def test_draft_on_a_closed_case_cannot_be_edited(world):
    note = world.draft(world.social_worker)
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        do_update_draft(acting_user=world.social_worker, note=note,
                        **_draft_kwargs(note, body="Later thoughts."))
    assert caught.value.messages == [CLOSED_MESSAGE]


def test_note_about_a_person_not_in_the_case_is_refused(world):
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(
            world, people=[world.people["ellie"], world.other_people["kwame"]]))
    assert caught.value.message_dict == {"people": ["Choose people from this family only."]}


def test_every_problem_is_named_at_once(world):
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(
            world, body=" ", occurred_at=timezone.now() + datetime.timedelta(days=1),
            note_type="gossip", sensitivity="public"))
    assert set(caught.value.message_dict) == {"body", "occurred_at", "note_type", "sensitivity"}


def test_finalised_note_cannot_be_edited(world):
    author = world.social_worker
    note = world.standard_note(author)
    with refused_unchanged() as caught:
        do_update_draft(acting_user=author, note=note,
                        **_draft_kwargs(note, body="Rewriting history."))
    assert caught.value.messages == [FINALISED_MESSAGE]


def test_second_finalise_is_refused(world):
    author = world.social_worker
    note = world.draft(author)
    finalised = do_finalise_note(acting_user=author, note=note, expected_version=1)
    with refused_unchanged() as caught:
        do_finalise_note(acting_user=author, note=note, expected_version=finalised.version)
    assert caught.value.messages == [FINALISED_MESSAGE]


def test_stale_draft_edit_is_refused_and_returns_the_current_text(world):
    author = world.social_worker
    note = world.draft(author, body="Draft written in the car.")
    do_update_draft(acting_user=author, note=note,
                    **_draft_kwargs(note, body="Draft finished at the office."))
    with refused_unchanged(StaleVersion) as caught:
        do_update_draft(acting_user=author, note=note, **_draft_kwargs(
            note, expected_version=1, body="Edit from the phone, based on version 1."))
    assert caught.value.current.pk == note.pk
    assert (caught.value.current.version, caught.value.current.body) == (
        2, "Draft finished at the office.")
    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.version, stored.body) == (2, "Draft finished at the office.")


def test_stale_finalise_is_refused(world):
    author = world.social_worker
    note = world.draft(author)
    do_update_draft(acting_user=author, note=note, **_draft_kwargs(note, body="Second go."))
    with refused_unchanged(StaleVersion) as caught:
        do_finalise_note(acting_user=author, note=note, expected_version=1)
    assert caught.value.current.body == "Second go."
    assert CaseNote.objects.get(pk=note.pk).state == CaseNote.State.DRAFT


def test_bad_draft_update_changes_nothing(world):
    author = world.social_worker
    note = world.draft(author, body="Keep me.")
    with refused_unchanged() as caught:
        do_update_draft(acting_user=author, note=note, **_draft_kwargs(note, body="  "))
    assert caught.value.message_dict == {"body": ["Enter the note."]}
    assert CaseNote.objects.get(pk=note.pk).version == 1


def test_named_readers_on_a_non_sealed_note_are_refused(world):
    for sensitivity in (S.STANDARD, S.AGENCY_RESTRICTED):
        with refused_unchanged() as caught:
            do_create_note(acting_user=world.social_worker, **_note_kwargs(
                world, sensitivity=sensitivity, readers=[world.team_manager]))
        assert caught.value.message_dict == {"readers": [
            "Named readers are only for sealed notes. "
            "Choose 'Sealed' or clear the named readers."]}


def test_sealed_note_readers_must_work_on_the_case(world):
    outsiders = [
        world.locality_users[Role.SOCIAL_WORKER],  # another team
        world.user(Role.IG_OFFICER),               # organisation-wide
        world.bootstrap_admin,                     # superuser
    ]
    for outsider in outsiders:
        with refused_unchanged() as caught:
            world.sealed_note(world.user(Role.DA_VICTIM_WORKER),
                              readers=[world.team_manager, outsider])
        assert caught.value.message_dict == {
            "readers": ["Named readers must be people working on this case."]}


def test_sealed_note_reader_whose_membership_ended_is_refused(world):
    reader = world.user(Role.PROBATION_OFFICER)
    do_end_membership(acting_user=world.bootstrap_admin, membership=world.memberships[reader.pk])
    with refused_unchanged() as caught:
        world.sealed_note(world.user(Role.DA_VICTIM_WORKER), readers=[reader])
    assert "readers" in caught.value.message_dict


def test_an_addendum_sent_again_with_its_pages_key_is_not_added_twice(world):
    note = world.standard_note(world.social_worker)
    key = "7e1f2d3c-4b5a-4697-8a1b-2c3d4e5f6a7b"
    first = do_add_addendum(acting_user=world.team_manager, note=note, body="Once.", client_ref=key)
    watch = AuditWatch()
    with pytest.raises(AlreadyAdded) as again:
        do_add_addendum(acting_user=world.team_manager, note=note, body="Once.", client_ref=key)
    assert again.value.added == first
    assert list(note.addenda.values_list("pk", flat=True)) == [first.pk]
    assert watch.actions() == []
    # Another page's key, or none, is another addendum.
    do_add_addendum(acting_user=world.team_manager, note=note, body="Once.")
    assert note.addenda.count() == 2


def test_addendum_needs_a_body(world):
    note = world.standard_note(world.social_worker)
    with refused_unchanged() as caught:
        do_add_addendum(acting_user=world.social_worker, note=note, body=" \n ")
    assert caught.value.message_dict == {"body": ["Enter the addendum."]}


def test_addendum_over_the_limit_is_refused(world):
    note = world.standard_note(world.social_worker)
    with refused_unchanged() as caught:
        do_add_addendum(acting_user=world.social_worker, note=note, body="y" * (MAX + 1))
    assert caught.value.message_dict == {"body": [
        f"The addendum must be {MAX:,} characters or fewer (it has {MAX + 1:,})."]}


def test_addendum_to_a_draft_is_refused(world):
    note = world.draft(world.social_worker)
    with refused_unchanged() as caught:
        do_add_addendum(acting_user=world.social_worker, note=note, body="Extra detail.")
    assert caught.value.messages == ["This note is still a draft: edit the draft instead."]


def test_addendum_on_a_closed_case_is_refused(world):
    note = world.standard_note(world.social_worker)
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        do_add_addendum(acting_user=world.social_worker, note=note, body="Extra detail.")
    assert caught.value.messages == [CLOSED_MESSAGE]


def test_someone_elses_draft_cannot_be_edited_or_finalised(world):
    note = world.draft(world.social_worker)
    other = world.user(Role.SOCIAL_WORKER, 1)
    with refused_unchanged(NotFound):
        do_update_draft(acting_user=other, note=note, **_draft_kwargs(note, body="Not mine."))
    with refused_unchanged(NotFound):
        do_finalise_note(acting_user=other, note=note, expected_version=1)


# --- live events ----------------------------------------------------------------------
# Each action writes a numbered CaseEvent in its own transaction; on commit
# casenotes.events.publish sends {"type": "case.event", "seq", "kind", ...} to the
# audience groups (see the table in casenotes/events.py).

def _receive(layer, channel, timeout=5.0):
    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout)

    return async_to_sync(receive)()


SENTINEL = {"type": "test.sentinel"}
SECRET_BODY = "Kayleigh disclosed that Dean has moved back in (LIVE-SECRET-7731)."
SECRET = "LIVE-SECRET-7731"


class Listener:
    """One channel in each of some groups, on the configured (real) channel layer."""

    def __init__(self, groups):
        self.layer = get_channel_layer()
        self.channels = {}
        for group in groups:
            channel = async_to_sync(self.layer.new_channel)()
            async_to_sync(self.layer.group_add)(group, channel)
            self.channels[group] = channel

    def heard(self, group) -> list[dict]:
        """Everything `group` was sent, up to a sentinel sent now."""
        async_to_sync(self.layer.group_send)(group, SENTINEL)
        received = []
        while (message := _receive(self.layer, self.channels[group])) != SENTINEL:
            received.append(message)
        return received

    def close(self):
        for group, channel in self.channels.items():
            async_to_sync(self.layer.group_discard)(group, channel)


@contextmanager
def listening(*groups):
    listener = Listener(groups)
    try:
        yield listener
    finally:
        listener.close()


def _seqs(case) -> list[tuple[int, str, int | None]]:
    return list(CaseEvent.objects.filter(case=case).order_by("seq").values_list(
        "seq", "kind", "note_id"))


def test_changes_are_numbered_per_case_from_one_in_commit_order(
    world, django_capture_on_commit_callbacks
):
    author, tm, case = world.social_worker, world.team_manager, world.case
    locality = world.locality_users[Role.SOCIAL_WORKER]
    # The world's four people were each a change of the case.
    assert _seqs(case) == [(n, "person.added", None) for n in (1, 2, 3, 4)]
    assert [seq for seq, _, _ in _seqs(world.other_case)] == [1, 2]

    with listening(case_group(case.pk), viewer_group(case.pk, author.pk)) as listener:
        with django_capture_on_commit_callbacks(execute=True):
            draft = world.draft(author, body=SECRET_BODY)
        with django_capture_on_commit_callbacks(execute=True):
            world.standard_note(locality, case=world.other_case)
        with django_capture_on_commit_callbacks(execute=True):
            do_update_draft(acting_user=author, note=draft, **_draft_kwargs(draft, body="Edited."))
        with django_capture_on_commit_callbacks(execute=True):
            do_finalise_note(acting_user=author, note=draft, expected_version=2)
        with django_capture_on_commit_callbacks(execute=True):
            do_add_addendum(acting_user=tm, note=draft, body="Seen by the manager.")
        with django_capture_on_commit_callbacks(execute=True):
            do_add_person(acting_user=author, case=case, full_name="Nan Harper",
                          role_in_family=Person.RoleInFamily.GRANDPARENT)
        with django_capture_on_commit_callbacks(execute=True):
            do_close_case(acting_user=tm, case=case)
        to_author = listener.heard(viewer_group(case.pk, author.pk))
        to_room = listener.heard(case_group(case.pk))

    assert _seqs(case)[4:] == [
        (5, "note.created", draft.pk), (6, "note.updated", draft.pk),
        (7, "note.finalised", draft.pk), (8, "addendum.created", draft.pk),
        (9, "person.added", None), (10, "case.updated", None),
    ]
    assert [seq for seq, _, _ in _seqs(world.other_case)] == [1, 2, 3]
    # The draft's events went to its author only; once final, to the whole room.
    assert [(m["seq"], m["kind"], m["note"]) for m in to_author] == [
        (5, "note.created", draft.pk), (6, "note.updated", draft.pk)]
    assert [(m["seq"], m["kind"]) for m in to_room] == [
        (7, "note.finalised"), (8, "addendum.created"), (9, "person.added"), (10, "case.updated")]
    assert all(m["type"] == "case.event" for m in to_author + to_room)
    # A change that is not a note carries its number and kind only (and the audience it
    # was sent to, for the receiving process's relay): no names.
    room = case_group(case.pk)
    assert to_room[2:] == [{"type": "case.event", "seq": 9, "kind": "person.added", "group": room},
                           {"type": "case.event", "seq": 10, "kind": "case.updated", "group": room}]


def test_the_event_rolls_back_with_its_change_and_numbers_stay_gap_free(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    import casenotes.actions as actions

    author, case = world.social_worker, world.case
    before = _seqs(case)
    with listening(case_group(case.pk)) as listener:
        # The connection drops before the caller's transaction commits.
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                world.standard_note(author, body=SECRET_BODY)
                assert CaseEvent.objects.filter(case=case).count() == len(before) + 1
                raise RuntimeError("connection dropped before commit")
        assert callbacks == []

        # The action itself fails after numbering its change.
        publish = actions.notes._publish

        def publish_then_fail(*args, **kwargs):
            publish(*args, **kwargs)
            raise RuntimeError("audit store unavailable")

        monkeypatch.setattr(actions.notes, "_publish", publish_then_fail)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError):
                world.standard_note(author, body=SECRET_BODY)
        assert callbacks == []
        monkeypatch.undo()
        assert _seqs(case) == before
        assert not CaseNote.objects.filter(body=SECRET_BODY).exists()
        assert listener.heard(case_group(case.pk)) == []

        with django_capture_on_commit_callbacks(execute=True):
            note = world.standard_note(author)
        assert _seqs(case) == [*before, (len(before) + 1, "note.created", note.pk)]
        assert [m["seq"] for m in listener.heard(case_group(case.pk))] == [len(before) + 1]


def test_nothing_is_sent_before_commit(world, django_capture_on_commit_callbacks):
    with listening(case_group(world.case.pk)) as listener:
        layer, channel = listener.layer, listener.channels[case_group(world.case.pk)]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            note = world.standard_note(world.social_worker, body=SECRET_BODY)
            # Inside the transaction: the event row exists, but nothing may be sent yet,
            # so the sentinel goes first.
            assert CaseEvent.objects.filter(note=note).exists()
            async_to_sync(layer.group_send)(case_group(world.case.pk), SENTINEL)
        first = _receive(layer, channel)
        event = _receive(layer, channel)

    assert len(callbacks) == 1
    assert first == SENTINEL
    assert (event["type"], event["kind"], event["note"], event["level"]) == (
        "case.event", "note.created", note.pk, "full")


def test_the_case_wide_group_never_carries_restricted_or_sealed_text(
    world, django_capture_on_commit_callbacks
):
    case = world.case
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    agency = world.agency_of(author)
    reader, outsider = world.social_worker, world.user(Role.PROBATION_OFFICER)
    groups = {
        "room": case_group(case.pk), "agency": agency_group(case.pk, agency.pk),
        "managers": managers_group(case.pk), "author": viewer_group(case.pk, author.pk),
        "reader": viewer_group(case.pk, reader.pk), "outsider": viewer_group(case.pk, outsider.pk),
    }
    with listening(*groups.values()) as listener:
        with django_capture_on_commit_callbacks(execute=True):
            restricted = world.restricted_note(author, body=SECRET_BODY)
        with django_capture_on_commit_callbacks(execute=True):
            sealed = world.sealed_note(author, readers=[reader], body=SECRET_BODY)
        with django_capture_on_commit_callbacks(execute=True):
            draft = world.draft(author, sensitivity=S.AGENCY_RESTRICTED, body=SECRET_BODY)
        with django_capture_on_commit_callbacks(execute=True):
            do_finalise_note(acting_user=author, note=draft, expected_version=1)
        with django_capture_on_commit_callbacks(execute=True):
            do_add_addendum(acting_user=author, note=restricted, body="More detail.")
        heard = {name: listener.heard(group) for name, group in groups.items()}

    # The room: a placeholder when each restricted note first appears as final; nothing
    # of the sealed note, the draft or the addendum. Agency and date only.
    assert [(m["note"], m["kind"], m["level"]) for m in heard["room"]] == [
        (restricted.pk, "note.created", "placeholder"), (draft.pk, "note.finalised", "placeholder")]
    for message, note in zip(heard["room"], [restricted, draft], strict=True):
        day = dateformat.format(timezone.localtime(note.occurred_at), "j M Y")
        assert unescape(strip_tags(message["html"])).strip() == (
            f"Restricted note — {agency.short_name}, {day}")
        # What each receiving connection asks the policy with (sent on to no page).
        assert message["facts"] == {
            "case": case.pk, "author": author.pk, "state": CaseNote.State.FINAL,
            "sensitivity": S.AGENCY_RESTRICTED, "restricted_agency": None,
            "author_agency": agency.pk, "readers": []}
    assert SECRET not in json.dumps(heard["room"])
    assert "Home visit" not in json.dumps(heard["room"])
    assert author.get_full_name() not in json.dumps(heard["room"])

    # The audiences entitled to the text get it in full.
    full = [(restricted.pk, "note.created"), (draft.pk, "note.finalised"),
            (restricted.pk, "addendum.created")]
    for name in ("agency", "managers"):
        assert [(m["note"], m["kind"]) for m in heard[name]] == full
        assert all(m["level"] == "full" and SECRET in unescape(m["html"]) for m in heard[name])
    assert [(m["note"], m["kind"]) for m in heard["author"]] == [
        (restricted.pk, "note.created"), (sealed.pk, "note.created"), (draft.pk, "note.created"),
        (draft.pk, "note.finalised"), (restricted.pk, "addendum.created")]
    assert [(m["note"], m["level"]) for m in heard["reader"]] == [(sealed.pk, "full")]
    assert SECRET in unescape(heard["reader"][0]["html"])
    assert heard["outsider"] == []


def test_a_write_succeeds_and_is_numbered_when_the_channel_layer_is_down(
    world, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    layer = get_channel_layer()

    async def redis_down(*args, **kwargs):
        raise ConnectionError("channel layer unavailable")

    monkeypatch.setattr(layer, "group_send", redis_down)
    watch = AuditWatch()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = world.standard_note(world.social_worker)
    assert len(callbacks) == 1
    assert CaseNote.objects.filter(pk=note.pk).exists()
    assert CaseEvent.objects.filter(case=world.case, note=note, kind="note.created").exists()
    assert AuditAction.NOTE_CREATED in watch.actions()
    assert "live notice case.event" in caplog.text
