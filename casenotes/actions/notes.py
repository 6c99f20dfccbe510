"""Every write to cases, people, notes and addenda, and live-room presence.

Each action validates (raising ValidationError with a message a practitioner can
act on), writes inside one transaction, sets the history user, writes its audit
entry, and queues its live notice for after commit. Views, forms, consumers and
commands all call these; nothing else writes these models.
"""

import datetime
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actions import Pending, record, record_many
from audit.models import AuditAction
from casenotes.models import (
    NOTE_HISTORY,
    Addendum,
    Case,
    CaseEvent,
    CaseGroupObjectPermission,
    CaseNote,
    CaseVisit,
    Person,
    RoomPresence,
)
from casenotes.permissions import TEAM_PERMISSIONS, Action, NoteLevel, NotFound, policy
from casenotes.rules import CLOCK_SKEW, CLOSED_MESSAGE, FUTURE_MESSAGE
from teams.models import Agency, Team
from teams.selectors import actor_for, team_members


class AlreadyAdded(Exception):
    """The same form was sent again: what it added the first time, added once."""

    def __init__(self, added):
        super().__init__("This was already added.")
        self.added = added


class StaleVersion(Exception):
    """A draft edit based on a version that has moved on. Carries the current note
    so the author can see both texts and choose; nothing was saved."""

    def __init__(self, current: CaseNote):
        super().__init__("This draft was changed elsewhere since you opened it.")
        self.current = current


# --- cases --------------------------------------------------------------------------

def do_create_case(
    *, acting_user, reference: str, family_name: str, category: str, team: Team,
    lead_practitioner=None, opened_on: datetime.date | None = None,
) -> Case:
    if not policy.can(acting_user, Action.CREATE_CASE, team):
        raise NotFound("Team")
    reference = reference.strip()
    _refuse_if_taken(acting_user, reference)
    try:
        return _open_case(acting_user=acting_user, reference=reference, family_name=family_name,
                          category=category, team=team, lead_practitioner=lead_practitioner,
                          opened_on=opened_on)
    except IntegrityError:
        # Opened by someone else at the same moment, with the same reference.
        _refuse_if_taken(acting_user, reference)
        raise


def _case_with_reference(reference: str) -> int | None:
    return Case.objects.filter(reference=reference).values_list("pk", flat=True).first()


def _refuse_if_taken(acting_user, reference: str) -> None:
    taken = _case_with_reference(reference)
    if taken is not None:
        # The refusal tells the person that this case exists: recorded against it, as
        # any refused look is, outside the write's transaction so that it stays.
        policy.record_denied(acting_user, "case", taken, taken, "create_case: reference in use")
        raise ValidationError({"reference": [
            f"{reference} is already the reference of a case. Check the reference you were given."]})


@transaction.atomic
def _open_case(*, acting_user, reference, family_name, category, team, lead_practitioner,
               opened_on) -> Case:
    if lead_practitioner is not None and lead_practitioner.pk not in {
            m.user_id for m in team_members(team)}:
        raise ValidationError({"lead_practitioner": f"Choose a member of {team.name}."})
    case = Case(
        reference=reference, family_name=family_name.strip(), category=category,
        allocated_team=team, lead_practitioner=lead_practitioner,
        opened_on=opened_on or timezone.localdate(),
    )
    # A case opened with this reference since the look above, even at the same moment,
    # is caught by the database's unique index (do_create_case says so as it does).
    case.full_clean(validate_unique=False)
    case._history_user = acting_user
    case.save()
    actor = actor_for(acting_user)
    record(actor=actor, action=AuditAction.CASE_CREATED, object_type="case",
           object_id=case.pk, case_id=case.pk)
    _grant_team(case, team, acting_user, reason=f"allocated to {team.name}")
    return case


def _grant_team(case: Case, team: Team, acting_user, *, reason: str, actor=None) -> None:
    """Give `team` its standing permissions on `case` (history and audit for each row).
    A row the team kept from an earlier hand-over stops expiring."""
    actor = actor or actor_for(acting_user)
    for perm in Permission.objects.filter(
        content_type__app_label="casenotes", codename__in=TEAM_PERMISSIONS
    ):
        held = CaseGroupObjectPermission.objects.filter(
            group=team.group, permission=perm, content_object=case
        ).first()
        if held is not None and held.expires_at is None:
            continue
        row = held or CaseGroupObjectPermission(group=team.group, permission=perm,
                                                content_object=case)
        row.expires_at = None
        row._history_user = acting_user
        row.save()
        record(actor=actor, action=AuditAction.PERMISSION_GRANTED, object_type="case",
               object_id=case.pk, case_id=case.pk, reason=f"{perm.codename} to team: {reason}")


@transaction.atomic
def do_close_case(*, acting_user, case: Case, closed_on: datetime.date | None = None) -> Case:
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    access = policy.case_access(acting_user, case)
    if access is None or not policy.can(acting_user, Action.CLOSE_CASE, access):
        raise NotFound("Case")
    if not case.is_open:
        raise ValidationError("This case is already closed.")
    closed_on = closed_on or timezone.localdate()
    if closed_on < case.opened_on:
        raise ValidationError({"closed_on": "The closing date must be on or after the date the case opened."})
    case.status, case.closed_on = Case.Status.CLOSED, closed_on
    case.full_clean()
    case._history_user = acting_user
    case.save()
    record(actor=access.actor, action=AuditAction.CASE_CLOSED, object_type="case",
           object_id=case.pk, case_id=case.pk)
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED)
    return case


class PersonChanged(Exception):
    """An edit of a person's details based on a version that has moved on. Carries the
    person as saved now, so the editor can compare; nothing was saved."""

    def __init__(self, current: Person):
        super().__init__(f"{current.full_name}'s details were changed by someone else while "
                         "you had this page open.")
        self.current = current


_PERSON_FIELD_LABELS = {"full_name": "name", "role_in_family": "role in the family",
                        "date_of_birth": "date of birth"}


def _validated_person_fields(*, full_name: str, role_in_family: str,
                             date_of_birth: datetime.date | None) -> dict:
    """A person's details checked against the product's rules; one ValidationError
    naming every problem."""
    errors: dict[str, str] = {}
    full_name = (full_name or "").strip()
    max_length = Person._meta.get_field("full_name").max_length
    if not full_name:
        errors["full_name"] = "Enter the person's full name."
    elif len(full_name) > max_length:
        errors["full_name"] = f"The name must be {max_length} characters or fewer."
    if role_in_family not in Person.RoleInFamily.values:
        errors["role_in_family"] = "Choose their role in the family."
    if date_of_birth and date_of_birth > timezone.localdate():
        errors["date_of_birth"] = "The date of birth must be today or in the past."
    if errors:
        raise ValidationError(errors)
    return {"full_name": full_name, "role_in_family": role_in_family,
            "date_of_birth": date_of_birth}


@transaction.atomic
def do_add_person(
    *, acting_user, case: Case, full_name: str, role_in_family: str,
    date_of_birth: datetime.date | None = None, client_ref: str = "",
) -> Person:
    """`client_ref`: the key of the page the person was added on; the same form sent
    again finds them (AlreadyAdded), under the case's lock, instead of adding a copy."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    access = policy.case_access(acting_user, case)
    if access is None or not policy.can(acting_user, Action.ADD_PERSON, access):
        raise NotFound("Case")
    if not case.is_open:
        raise ValidationError("This case is closed. People cannot be added to a closed case.")
    if client_ref and (added := case.people.filter(client_ref=client_ref).first()):
        raise AlreadyAdded(added)
    fields = _validated_person_fields(full_name=full_name, role_in_family=role_in_family,
                                      date_of_birth=date_of_birth)
    person = Person(case=case, client_ref=client_ref, **fields)
    person.full_clean()
    person._history_user = acting_user
    person.save()
    record(actor=access.actor, action=AuditAction.PERSON_ADDED, object_type="person",
           object_id=person.pk, case_id=case.pk)
    _publish(case.pk, CaseEvent.Kind.PERSON_ADDED, case_locked=True)
    return person


@transaction.atomic
def do_update_person(
    *, acting_user, person: Person, based_on: int, full_name: str, role_in_family: str,
    date_of_birth: datetime.date | None,
) -> Person:
    """Correct a person's name, role in the family or date of birth. `based_on` is the
    version of the details the editor saw (`Person.details_version`); if they have
    changed since, nothing is saved (PersonChanged). Every version stays in the case's
    history; the audit entry names the fields changed, never their values."""
    case = Case.objects.select_for_update(no_key=True).get(pk=person.case_id)
    access = policy.case_access(acting_user, case)
    if access is None or not policy.can(acting_user, Action.ADD_PERSON, access):
        raise NotFound("Person")
    person = Person.objects.select_for_update(no_key=True).get(pk=person.pk, case=case)
    if not case.is_open:
        raise ValidationError("This case is closed. The details of its people cannot be changed.")
    fields = _validated_person_fields(full_name=full_name, role_in_family=role_in_family,
                                      date_of_birth=date_of_birth)
    if int(based_on) != person.details_version:
        raise PersonChanged(person)
    if fields["role_in_family"] == Person.RoleInFamily.CHILD and person.specialist_agency_id:
        raise ValidationError({"role_in_family": (
            f"{person.full_name} has a specialist agency recorded, which is for adults only. "
            "Remove it first, then record them as a child.")})
    changed = [name for name, value in fields.items() if getattr(person, name) != value]
    if not changed:
        return person
    for name in changed:
        setattr(person, name, fields[name])
    person.full_clean(exclude=["case", "specialist_agency"])
    person._history_user = acting_user
    person.save()
    record(actor=access.actor, action=AuditAction.PERSON_UPDATED, object_type="person",
           object_id=person.pk, case_id=case.pk,
           reason="changed: " + ", ".join(_PERSON_FIELD_LABELS[name] for name in changed))
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED, case_locked=True)
    return person


# --- notes ------------------------------------------------------------------------

def _validated_note_fields(
    *, case: Case, note_type: str, occurred_at: datetime.datetime, body: str,
    sensitivity: str, people: Iterable[Person], readers: Iterable,
    restricted_person: Person | None = None,
) -> dict:
    """Check the note's content against the product rules; raise one ValidationError
    naming every problem."""
    errors: dict[str, list[str]] = {}
    body = (body or "").strip()
    people, readers = list(people), list(readers)
    if not body:
        errors.setdefault("body", []).append("Enter the note.")
    elif len(body) > settings.NOTE_BODY_MAX_LENGTH:
        errors.setdefault("body", []).append(
            f"The note must be {settings.NOTE_BODY_MAX_LENGTH:,} characters or fewer "
            f"(it has {len(body):,})."
        )
    if occurred_at is None:
        errors.setdefault("occurred_at", []).append("Enter the date and time this happened.")
    elif occurred_at > timezone.now() + CLOCK_SKEW:
        errors.setdefault("occurred_at", []).append(FUTURE_MESSAGE)
    if note_type not in CaseNote.NoteType.values:
        errors.setdefault("note_type", []).append("Choose the type of note.")
    if sensitivity not in CaseNote.Sensitivity.values:
        errors.setdefault("sensitivity", []).append("Choose who may read this note.")
    if any(p.case_id != case.pk for p in people):
        errors.setdefault("people", []).append("Choose people from this family only.")
    if sensitivity == CaseNote.Sensitivity.SEALED:
        if any(_not_working_on(r, case) for r in readers):
            errors.setdefault("readers", []).append(
                "Named readers must be people working on this case."
            )
    elif readers:
        errors.setdefault("readers", []).append(
            "Named readers are only for sealed notes. Choose 'Sealed' or clear the named readers."
        )
    if restricted_person is not None:
        if restricted_person.case_id != case.pk or restricted_person.is_child:
            errors.setdefault("restricted_person", []).append(
                "Only a note about an adult in this family can be limited to their specialist agency.")
        elif restricted_person.specialist_agency_id is None:
            errors.setdefault("restricted_person", []).append(
                f"{restricted_person.full_name} has no specialist agency recorded.")
        elif sensitivity != CaseNote.Sensitivity.AGENCY_RESTRICTED:
            errors.setdefault("restricted_person", []).append(
                "Choose 'Agency-restricted' to limit a note to an adult's specialist agency.")
        elif restricted_person.pk not in {p.pk for p in people}:
            errors.setdefault("restricted_person", []).append(
                f"Tick {restricted_person.full_name} under 'Who is this note about?' as well.")
    if not case.is_open:
        errors.setdefault(NON_FIELD_ERRORS, []).append(CLOSED_MESSAGE)
    if errors:
        raise ValidationError(errors)
    return {
        "note_type": note_type, "occurred_at": occurred_at, "body": body,
        "sensitivity": sensitivity, "people": people, "readers": readers,
        "restricted_person": restricted_person,
        "restricted_agency_id": restricted_person.specialist_agency_id if restricted_person else None,
    }


def _not_working_on(user, case: Case) -> bool:
    """Named readers must work on the case: emergency access is no relationship."""
    access = policy.case_access(user, case)
    return access is None or access.is_break_glass


def _save_note(note: CaseNote, acting_user, *, people, readers, created: bool) -> None:
    """Save a note and its links, then write exactly one history version holding both
    (simple-history would otherwise add a version per link change)."""
    note.skip_history_when_saving = True
    # A new note with no links: its history version need not read them back.
    note._history_no_links = created and not people and not readers
    try:
        note.save()
        # A new note has no links yet: `set([])` would still read them.
        if people or not created:
            note.people.set(people)
        if readers or not created:
            note.readers.set(readers)
    finally:
        del note.skip_history_when_saving
    note._history_user = acting_user
    NOTE_HISTORY.create_historical_record(note, "+" if created else "~")


def _publish(case_id: int, kind: str, note: CaseNote | None = None, *,
             case_locked: bool = False, new_note_people=None) -> CaseEvent:
    """Number this change of the case and queue its live notices for after commit.

    The event row is written in the caller's transaction, under a lock on the case
    row, so numbers are gap-free per case and an event exists exactly when its change
    does. Case rows are locked FOR NO KEY UPDATE throughout: writers still queue, but
    inserts that only reference the case (presence, notes, events) are not blocked,
    so no transaction holding the audit append lock can wait on a case lock held by
    one waiting for that append lock (a deadlock the soak test found). Who receives
    what is decided when it is sent (casenotes.events). `new_note_people`: given when
    `note` was just created (with those people), so its notice is rendered as written
    (events.as_written), not read back."""
    from casenotes import events

    if not case_locked:
        Case.objects.select_for_update(no_key=True).filter(pk=case_id).values_list("pk", flat=True).get()
    event = CaseEvent(case_id=case_id, seq=events.last_seq(case_id) + 1, kind=kind, note=note)
    # The case and note were just read under lock; the (case, seq) constraint is the
    # database's to enforce. Checking them again would cost three queries per change.
    event.full_clean(exclude=["case", "note"], validate_constraints=False)
    event.save()
    written = None if new_note_people is None else events.as_written(note, new_note_people)
    transaction.on_commit(partial(events.publish, event, written), robust=True)
    return event


@transaction.atomic
def do_set_specialist_agency(*, acting_user, person: Person, agency: Agency | None) -> Person:
    """Record (or clear) the agency an adult's specialist detail may be limited to.
    Notes already written keep the audience they were written for."""
    person = Person.objects.select_for_update(no_key=True).select_related("case").get(pk=person.pk)
    access = policy.case_access(acting_user, person.case)
    if access is None or not policy.can(acting_user, Action.ADD_PERSON, access):
        raise NotFound("Person")
    if person.is_child and agency is not None:
        raise ValidationError({"specialist_agency":
                               "A specialist agency is recorded for adults only."})
    if person.specialist_agency_id == (agency.pk if agency else None):
        return person
    person.specialist_agency = agency
    person.full_clean(exclude=["case", "specialist_agency"])
    person._history_user = acting_user
    person.save()
    record(actor=access.actor, action=AuditAction.PERSON_UPDATED, object_type="person",
           object_id=person.pk, case_id=person.case_id,
           reason=f"specialist agency: {agency.short_name if agency else 'none'}")
    return person


@transaction.atomic
def do_create_note(
    *, acting_user, case: Case, note_type: str, occurred_at: datetime.datetime, body: str,
    sensitivity: str = CaseNote.Sensitivity.STANDARD, is_significant: bool = False,
    people: Iterable[Person] = (), readers: Iterable = (), finalise: bool = False,
    client_ref: str = "", restricted_person: Person | None = None,
) -> CaseNote:
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    access = policy.case_access(acting_user, case)
    if access is None or not access.can_view:
        raise NotFound("Case")
    fields = _validated_note_fields(
        case=case, note_type=note_type, occurred_at=occurred_at, body=body,
        sensitivity=sensitivity, people=people, readers=readers,
        restricted_person=restricted_person,
    )
    if not access.can_contribute or access.membership is None:
        raise ValidationError("You cannot add notes to this case.")
    now = timezone.now()
    note = CaseNote(
        case=case, author=acting_user, author_agency=access.membership.agency,
        note_type=fields["note_type"], occurred_at=fields["occurred_at"], body=fields["body"],
        sensitivity=fields["sensitivity"], is_significant=bool(is_significant),
        state=CaseNote.State.FINAL if finalise else CaseNote.State.DRAFT,
        created_at=now, updated_at=now, finalised_at=now if finalise else None,
        client_ref=client_ref, restricted_person=fields["restricted_person"],
        restricted_agency_id=fields["restricted_agency_id"],
    )
    # case, author and agency were just loaded by this action: skip re-querying them.
    note.full_clean(exclude=["case", "author", "author_agency", "restricted_person",
                             "restricted_agency"])
    _save_note(note, acting_user, people=fields["people"], readers=fields["readers"], created=True)
    actor = access.actor
    kinds = [AuditAction.NOTE_CREATED] + ([AuditAction.NOTE_FINALISED] if finalise else [])
    record_many([Pending(actor=actor, action=kind, object_type="note", object_id=note.pk,
                         case_id=case.pk) for kind in kinds])
    _publish(case.pk, CaseEvent.Kind.NOTE_CREATED, note, case_locked=True,
             new_note_people=fields["people"])
    return note


def _lock_own_draft(acting_user, note: CaseNote, expected_version: int, action: Action):
    note = CaseNote.objects.select_for_update(no_key=True).select_related("case").get(pk=note.pk)
    access = policy.case_access(acting_user, note.case)
    if policy.note_level(access, note) != NoteLevel.FULL:
        raise NotFound("Note")
    if note.is_final:
        raise ValidationError(
            "This note has been finalised and can no longer be changed. "
            "Add an addendum to correct or add to it."
        )
    if not policy.can_on_note(access, action, note):
        raise NotFound("Note")
    if not note.case.is_open:
        raise ValidationError(CLOSED_MESSAGE)
    if int(expected_version) != note.version:
        raise StaleVersion(note)
    return note, access


@transaction.atomic
def do_update_draft(
    *, acting_user, note: CaseNote, expected_version: int, note_type: str,
    occurred_at: datetime.datetime, body: str, sensitivity: str, is_significant: bool = False,
    people: Iterable[Person] = (), readers: Iterable = (), finalise: bool = False,
    restricted_person: Person | None = None,
) -> CaseNote:
    """Save the author's draft; refuse, changing nothing, if it moved on since
    `expected_version` (StaleVersion) or has been finalised."""
    note, access = _lock_own_draft(acting_user, note, expected_version, Action.EDIT_NOTE)
    fields = _validated_note_fields(
        case=note.case, note_type=note_type, occurred_at=occurred_at, body=body,
        sensitivity=sensitivity, people=people, readers=readers,
        restricted_person=restricted_person,
    )
    now = timezone.now()
    note.note_type, note.occurred_at, note.body = (
        fields["note_type"], fields["occurred_at"], fields["body"])
    note.sensitivity, note.is_significant = fields["sensitivity"], bool(is_significant)
    note.restricted_person = fields["restricted_person"]
    note.restricted_agency_id = fields["restricted_agency_id"]
    note.version += 1
    note.updated_at = now
    if finalise:
        note.state, note.finalised_at = CaseNote.State.FINAL, now
    note.full_clean()
    _save_note(note, acting_user, people=fields["people"], readers=fields["readers"], created=False)
    actor = access.actor
    kinds = [AuditAction.NOTE_UPDATED] + ([AuditAction.NOTE_FINALISED] if finalise else [])
    record_many([Pending(actor=actor, action=kind, object_type="note", object_id=note.pk,
                         case_id=note.case_id) for kind in kinds])
    _publish(note.case_id, CaseEvent.Kind.NOTE_FINALISED if finalise else CaseEvent.Kind.NOTE_UPDATED,
             note)
    return note


@transaction.atomic
def do_finalise_note(*, acting_user, note: CaseNote, expected_version: int) -> CaseNote:
    note, access = _lock_own_draft(acting_user, note, expected_version, Action.FINALISE_NOTE)
    now = timezone.now()
    note.state, note.finalised_at, note.updated_at = CaseNote.State.FINAL, now, now
    note.version += 1
    note.full_clean()
    note._history_user = acting_user
    note.save()
    record(actor=access.actor, action=AuditAction.NOTE_FINALISED, object_type="note",
           object_id=note.pk, case_id=note.case_id)
    _publish(note.case_id, CaseEvent.Kind.NOTE_FINALISED, note)
    return note


@transaction.atomic
def do_add_addendum(*, acting_user, note: CaseNote, body: str, client_ref: str = "") -> Addendum:
    """`client_ref`: the key of the page the addendum was written on. The same form sent
    again (a retry, a resend) finds the addendum it added (AlreadyAdded), under the
    note's lock, instead of adding a second, permanent one."""
    note = CaseNote.objects.select_for_update(no_key=True).select_related("case").get(pk=note.pk)
    access = policy.case_access(acting_user, note.case)
    if policy.note_level(access, note) != NoteLevel.FULL:
        raise NotFound("Note")
    body = (body or "").strip()
    if not note.is_final:
        raise ValidationError("This note is still a draft: edit the draft instead.")
    if not note.case.is_open:
        raise ValidationError(CLOSED_MESSAGE)
    if not policy.can_on_note(access, Action.AMEND_NOTE, note) or access.membership is None:
        raise NotFound("Note")
    if not body:
        raise ValidationError({"body": "Enter the addendum."})
    if len(body) > settings.NOTE_BODY_MAX_LENGTH:
        raise ValidationError({"body": (
            f"The addendum must be {settings.NOTE_BODY_MAX_LENGTH:,} characters or fewer "
            f"(it has {len(body):,}).")})
    if client_ref and (added := Addendum.objects.filter(
            note=note, author=acting_user, client_ref=client_ref).first()):
        raise AlreadyAdded(added)
    addendum = Addendum(note=note, author=acting_user, author_agency=access.membership.agency,
                        body=body, client_ref=client_ref)
    addendum.full_clean()
    addendum._history_user = acting_user
    addendum.save()
    record(actor=access.actor, action=AuditAction.ADDENDUM_ADDED, object_type="addendum",
           object_id=addendum.pk, case_id=note.case_id)
    _publish(note.case_id, CaseEvent.Kind.ADDENDUM_CREATED, note)
    return addendum


# --- live room presence ------------------------------------------------------------

@transaction.atomic
def do_join_room(*, acting_user, access, channel_name: str) -> RoomPresence:
    """Record that `acting_user` opened the case's live room (an audited read)."""
    membership = access.membership
    presence = RoomPresence(
        case=access.case, user=acting_user, channel_name=channel_name,
        display_name=acting_user.get_full_name() or acting_user.get_username(),
        role_label=membership.get_role_display() if membership else "",
        agency_label=membership.agency.short_name if membership else "",
    )
    presence.full_clean()
    presence.save()
    record(actor=access.actor, action=AuditAction.LIVE_JOINED, object_type="case",
           object_id=access.case.pk, case_id=access.case.pk)
    return presence


def do_mark_case_seen(*, acting_user, case: Case, at: datetime.datetime) -> None:
    """Move the person's reading position on `case` to `at`, the moment before the page
    read the notes it showed (a note finalised while it was read stays new), in one
    statement (their own bookmark, not case data: not audited; the page view is)."""
    CaseVisit.objects.bulk_create(
        [CaseVisit(user=acting_user, case=case, seen_at=at)],
        update_conflicts=True, unique_fields=["user", "case"], update_fields=["seen_at"])


def do_touch_presence(*, channel_name: str) -> None:
    """Keep a connection's presence fresh (a heartbeat; not case data, not audited)."""
    RoomPresence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


def do_leave_room(*, channel_name: str) -> None:
    RoomPresence.objects.filter(channel_name=channel_name).delete()
