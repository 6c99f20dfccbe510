"""The access actions: lead practitioner, keyworkers, transfers and hand-over, break-glass,
sealed-note readers and per-person restriction. Each test drives the actions only and
checks what the policy answers afterwards, the audit and history rows left behind, the
live notices queued after commit, and that bad input is refused with nothing changed.

Expiry is proved with an injected clock (`django.utils.timezone.now` patched): no job
runs, the policy simply stops honouring rows whose end has passed.
"""

import datetime
from collections import Counter
from contextlib import contextmanager
from unittest import mock

import pytest
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from audit.models import AuditAction
from casenotes.actions import (
    do_add_addendum,
    do_add_keyworker,
    do_allocate_lead,
    do_close_case,
    do_create_note,
    do_decide_transfer,
    do_open_break_glass,
    do_remove_keyworker,
    do_request_transfer,
    do_set_specialist_agency,
    do_share_sealed_note,
    do_withdraw_transfer,
)
from casenotes.models import (
    Case,
    CaseEvent,
    CaseGrant,
    CaseGroupObjectPermission,
    CaseNote,
    CaseTransfer,
    CaseUserObjectPermission,
    Person,
)
from casenotes.permissions import Action, NoteLevel, NotFound, Source, policy
from casenotes.selectors import case_page
from teams.actions import do_save_team
from teams.models import Agency, Role, Team
from tests.helpers import AuditWatch, assert_audit, assert_history, write_fingerprint
from workspace import live

S = CaseNote.Sensitivity
A = AuditAction
HANDOVER = datetime.timedelta(days=settings.HANDOVER_DAYS)
BREAK_GLASS = datetime.timedelta(hours=settings.BREAK_GLASS_HOURS)
RECHECK = {"type": "access.recheck"}


# --- helpers ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _policy_never_swallowed_an_error(caplog):
    """A `None` from the policy must be a decision, not an exception it failed closed on
    (which would make every 'access is gone' assertion here pass for the wrong reason)."""
    yield
    swallowed = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)
                 if "check failed" in r.getMessage()]
    assert swallowed == []


def access_fingerprint() -> dict:
    """write_fingerprint() plus every row an access action could touch."""
    history = (Case, Person, CaseGrant, CaseTransfer, CaseUserObjectPermission,
               CaseGroupObjectPermission)
    return {
        "writes": write_fingerprint(),
        "cases": list(Case.objects.order_by("pk").values_list(
            "pk", "status", "allocated_team_id", "lead_practitioner_id")),
        "people": list(Person.objects.order_by("pk").values_list("pk", "specialist_agency_id")),
        "grants": list(CaseGrant.objects.order_by("pk").values_list(
            "pk", "case_id", "user_id", "kind", "expires_at", "ended_at", "ended_by_id")),
        "user_rows": list(CaseUserObjectPermission.objects.order_by("pk").values_list(
            "pk", "user_id", "permission_id", "content_object_id", "grant_id", "expires_at")),
        "group_rows": list(CaseGroupObjectPermission.objects.order_by("pk").values_list(
            "pk", "group_id", "permission_id", "content_object_id", "expires_at")),
        "transfers": list(CaseTransfer.objects.order_by("pk").values_list(
            "pk", "status", "to_team_id", "decided_by_id", "decision_reason", "handover_ends_at")),
        "events": list(CaseEvent.objects.order_by("pk").values_list("case_id", "seq", "kind")),
        "history": tuple(model.history.model.objects.count() for model in history),
    }


@contextmanager
def refused_unchanged(exception=ValidationError):
    """The block must raise `exception` and leave every row (and the audit trail) as it was."""
    before = access_fingerprint()
    with pytest.raises(exception) as caught:
        yield caught
    assert access_fingerprint() == before


@contextmanager
def clock_at(moment: datetime.datetime):
    """Every `timezone.now()` (and so `localdate()`) answers `moment` inside the block."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        assert timezone.now() == moment
        yield


@pytest.fixture
def sent(monkeypatch):
    """Every live notice handed to the channel layer, as (group, message), in order."""
    sends: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "send_many", lambda pairs: sends.extend(pairs))
    monkeypatch.setattr(live, "send_now", lambda group, message: sends.append((group, message)))
    return sends


def _visible(user, case) -> bool:
    return policy.visible_cases(user).filter(pk=case.pk).exists()


def _level(user, note: CaseNote) -> NoteLevel:
    fresh = CaseNote.objects.get(pk=note.pk)
    return policy.note_level(policy.case_access(user, fresh.case), fresh)


def _events(case) -> list[tuple[int, str, int | None]]:
    return list(CaseEvent.objects.filter(case=case).order_by("seq").values_list(
        "seq", "kind", "note_id"))


def _note_kwargs(case, **overrides) -> dict:
    kwargs = {
        "case": case, "note_type": CaseNote.NoteType.HOME_VISIT,
        "occurred_at": timezone.now() - datetime.timedelta(hours=2),
        "body": "Saw the children at home; both well and talkative.",
        "sensitivity": S.STANDARD,
    }
    kwargs.update(overrides)
    return kwargs


def _locality_manager(world):
    return world.locality_users[Role.TEAM_MANAGER]


# --- lead practitioner ---------------------------------------------------------------------

def test_case_manager_allocates_a_lead_from_the_team(world):
    tm, case = world.team_manager, world.case
    new_lead = world.user(Role.SOCIAL_WORKER, 1)
    assert case.lead_practitioner_id != new_lead.pk
    events_before = _events(case)
    watch = AuditWatch()

    do_allocate_lead(acting_user=tm, case=case, lead=new_lead)

    stored = Case.objects.get(pk=case.pk)
    assert stored.lead_practitioner_id == new_lead.pk
    assert_history(stored, user=tm, history_type="~")
    assert stored.history.order_by("-history_id").first().lead_practitioner_id == new_lead.pk
    assert watch.actions() == [A.LEAD_ALLOCATED]
    event = watch.one(A.LEAD_ALLOCATED)
    assert_audit(event, action=A.LEAD_ALLOCATED, actor=tm, case_id=case.pk,
                 object_type="case", object_id=case.pk)
    assert event.reason == f"lead practitioner {new_lead.get_username()}"
    assert _events(case) == [*events_before, (len(events_before) + 1, "case.updated", None)]


@pytest.mark.parametrize("who", ["social_worker", "locality_manager", "ig_officer"])
def test_only_the_allocated_teams_manager_may_allocate_the_lead(world, who):
    acting = {
        "social_worker": world.social_worker,
        "locality_manager": _locality_manager(world),
        "ig_officer": world.user(Role.IG_OFFICER),
    }[who]
    with refused_unchanged(NotFound):
        do_allocate_lead(acting_user=acting, case=world.case, lead=world.user(Role.SOCIAL_WORKER, 1))
    assert Case.objects.get(pk=world.case.pk).lead_practitioner_id == world.social_worker.pk


@pytest.mark.parametrize("who", ["locality_social_worker", "ig_officer", "nobody"])
def test_lead_from_outside_the_allocated_team_is_refused(world, who):
    lead = {
        "locality_social_worker": world.locality_users[Role.SOCIAL_WORKER],
        "ig_officer": world.user(Role.IG_OFFICER),
        "nobody": None,
    }[who]
    with refused_unchanged() as caught:
        do_allocate_lead(acting_user=world.team_manager, case=world.case, lead=lead)
    assert caught.value.message_dict == {"lead": [f"Choose a member of {world.fs_team.name}."]}


def test_lead_of_a_closed_case_cannot_be_changed(world):
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        do_allocate_lead(acting_user=world.team_manager, case=world.case,
                         lead=world.user(Role.SOCIAL_WORKER, 1))
    assert caught.value.messages == ["This case is closed. Its lead practitioner cannot be changed."]


# --- keyworkers -------------------------------------------------------------------------

def test_manager_adds_a_keyworker_who_can_then_view_and_contribute(world):
    lm, case = _locality_manager(world), world.other_case
    keyworker = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    assert policy.case_access(keyworker, case) is None
    watch = AuditWatch()

    grant = do_add_keyworker(acting_user=lm, case=case, user=keyworker)

    stored = CaseGrant.objects.get(pk=grant.pk)
    assert (stored.case_id, stored.user_id, stored.kind, stored.granted_by_id) == (
        case.pk, keyworker.pk, CaseGrant.Kind.KEYWORKER, lm.pk)
    assert stored.expires_at is None and stored.ended_at is None
    assert_history(stored, user=lm, history_type="+")
    rows = CaseUserObjectPermission.objects.filter(grant=grant)
    assert sorted(r.permission.codename for r in rows) == ["contribute_to_case", "view_case"]
    for row in rows:
        assert (row.user_id, row.content_object_id, row.expires_at) == (keyworker.pk, case.pk, None)
        assert_history(row, user=lm, history_type="+")

    assert watch.actions() == [A.PERMISSION_GRANTED, A.PERMISSION_GRANTED, A.KEYWORKER_ADDED]
    added = watch.one(A.KEYWORKER_ADDED)
    assert_audit(added, action=A.KEYWORKER_ADDED, actor=lm, case_id=case.pk,
                 object_type="grant", object_id=grant.pk)
    assert added.reason == keyworker.get_username()
    granted = [e for e in watch.new() if e.action == A.PERMISSION_GRANTED]
    for event in granted:
        assert_audit(event, action=A.PERMISSION_GRANTED, actor=lm, case_id=case.pk,
                     object_type="case", object_id=case.pk)
    assert sorted(e.reason for e in granted) == [
        f"contribute_to_case to {keyworker.get_username()}: keyworker",
        f"view_case to {keyworker.get_username()}: keyworker"]

    access = policy.case_access(keyworker, case)
    assert access is not None
    assert access.sources == {Source.KEYWORKER}
    assert access.can_view and access.can_contribute
    assert access.expires_at is None and not access.is_break_glass
    assert not access.is_case_manager
    assert policy.can(keyworker, Action.ADD_NOTE, case)
    assert _visible(keyworker, case)

    note = do_create_note(acting_user=keyworker, finalise=True, **_note_kwargs(case))
    stored_note = CaseNote.objects.get(pk=note.pk)
    assert (stored_note.case_id, stored_note.author_id) == (case.pk, keyworker.pk)
    assert stored_note.author_agency == world.agency_of(keyworker)
    assert _level(world.locality_users[Role.SOCIAL_WORKER], stored_note) == NoteLevel.FULL


def test_keyworker_end_date_in_the_past_is_refused(world):
    with refused_unchanged() as caught:
        do_add_keyworker(acting_user=_locality_manager(world), case=world.other_case,
                         user=world.user(Role.MENTAL_HEALTH_PRACTITIONER),
                         until=timezone.localdate() - datetime.timedelta(days=1))
    assert caught.value.message_dict == {"until": ["The end date must be today or in the future."]}
    assert policy.case_access(world.user(Role.MENTAL_HEALTH_PRACTITIONER), world.other_case) is None


@pytest.mark.parametrize("until", [datetime.date(9999, 12, 31), None],
                         ids=["last-date", "a-day-past-two-years"])
def test_keyworker_end_date_more_than_two_years_ahead_is_refused(world, until):
    from casenotes.rules import two_years_on

    until = until or two_years_on(timezone.localdate()) + datetime.timedelta(days=1)
    with refused_unchanged() as caught:
        do_add_keyworker(acting_user=_locality_manager(world), case=world.other_case,
                         user=world.user(Role.MENTAL_HEALTH_PRACTITIONER), until=until)
    assert caught.value.message_dict == {"until": [
        "The end date must be within the next 2 years. Leave it blank for access until the "
        "keyworker is removed."]}


def test_keyworker_end_date_exactly_two_years_ahead_is_accepted(world):
    from casenotes.rules import two_years_on

    assert two_years_on(datetime.date(2028, 2, 29)) == datetime.date(2030, 2, 28)
    until = two_years_on(timezone.localdate())
    grant = do_add_keyworker(acting_user=_locality_manager(world), case=world.other_case,
                             user=world.user(Role.MENTAL_HEALTH_PRACTITIONER), until=until)
    assert timezone.localtime(grant.expires_at).date() == until + datetime.timedelta(days=1)


def test_the_same_keyworker_cannot_be_added_twice(world):
    lm, keyworker = _locality_manager(world), world.user(Role.PROBATION_OFFICER)
    do_add_keyworker(acting_user=lm, case=world.other_case, user=keyworker)
    with refused_unchanged() as caught:
        do_add_keyworker(acting_user=lm, case=world.other_case, user=keyworker)
    assert list(caught.value.message_dict) == ["user"]
    assert "is already a keyworker on this case" in caught.value.message_dict["user"][0]
    assert CaseGrant.objects.filter(case=world.other_case, user=keyworker).count() == 1


@pytest.mark.parametrize("who", ["ig_officer", "administrator", "superuser"])
def test_someone_who_does_not_work_cases_cannot_be_a_keyworker(world, who):
    user = {
        "ig_officer": world.user(Role.IG_OFFICER),
        "administrator": world.user(Role.ADMINISTRATOR),
        "superuser": world.bootstrap_admin,
    }[who]
    with refused_unchanged() as caught:
        do_add_keyworker(acting_user=_locality_manager(world), case=world.other_case, user=user)
    assert caught.value.message_dict == {"user": ["Choose a practitioner who works on cases."]}
    assert policy.case_access(user, world.other_case) is None


@pytest.mark.parametrize("who", ["locality_social_worker", "fs_manager"])
def test_only_the_allocated_teams_manager_may_add_a_keyworker(world, who):
    acting = {"locality_social_worker": world.locality_users[Role.SOCIAL_WORKER],
              "fs_manager": world.team_manager}[who]
    with refused_unchanged(NotFound):
        do_add_keyworker(acting_user=acting, case=world.other_case,
                         user=world.user(Role.MENTAL_HEALTH_PRACTITIONER))


def test_keyworker_until_today_keeps_access_all_day_and_loses_it_at_midnight(world):
    lm, case = _locality_manager(world), world.other_case
    keyworker = world.user(Role.RECOVERY_WORKER)
    today = timezone.localdate()
    watch = AuditWatch()

    grant = do_add_keyworker(acting_user=lm, case=case, user=keyworker, until=today)

    end = CaseGrant.objects.get(pk=grant.pk).expires_at
    local_end = timezone.localtime(end)
    assert (local_end.date(), local_end.time()) == (today + datetime.timedelta(days=1), datetime.time.min)
    assert set(CaseUserObjectPermission.objects.filter(grant=grant)
               .values_list("expires_at", flat=True)) == {end}
    access = policy.case_access(keyworker, case)
    assert access is not None and access.can_contribute and access.expires_at == end
    assert watch.one(A.KEYWORKER_ADDED).reason == (
        f"{keyworker.get_username()} until {today:%d %b %Y}")

    with clock_at(end - datetime.timedelta(seconds=1)):
        access = policy.case_access(keyworker, case)
        assert access is not None and access.can_view and access.can_contribute
        assert _visible(keyworker, case)
    for moment in (end, end + datetime.timedelta(days=1)):
        with clock_at(moment):
            assert policy.case_access(keyworker, case) is None
            assert not _visible(keyworker, case)
            assert not policy.can(keyworker, Action.ADD_NOTE, case)
            # The team's own access is untouched by the clock.
            assert policy.case_access(world.locality_users[Role.SOCIAL_WORKER], case) is not None
    # Nothing ran to end it: the rows are still there, the policy just ignores them.
    assert CaseUserObjectPermission.objects.filter(grant=grant).count() == 2
    assert CaseGrant.objects.get(pk=grant.pk).ended_at is None


def test_removing_a_keyworker_ends_their_access_at_once(world):
    lm, case = _locality_manager(world), world.other_case
    keyworker = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    grant = do_add_keyworker(acting_user=lm, case=case, user=keyworker)
    watch = AuditWatch()

    do_remove_keyworker(acting_user=lm, grant=grant)

    assert policy.case_access(keyworker, case) is None
    assert not _visible(keyworker, case)
    stored = CaseGrant.objects.get(pk=grant.pk)
    assert stored.ended_at is not None and stored.ended_by_id == lm.pk
    assert_history(stored, user=lm, history_type="~")
    assert not CaseUserObjectPermission.objects.filter(grant=grant).exists()
    deleted = CaseUserObjectPermission.history.filter(grant_id=grant.pk, history_type="-")
    assert sorted(h.history_user_id for h in deleted) == [lm.pk, lm.pk]
    assert Counter(watch.actions()) == Counter({A.PERMISSION_REVOKED: 2, A.KEYWORKER_REMOVED: 1})
    removed = watch.one(A.KEYWORKER_REMOVED)
    assert_audit(removed, action=A.KEYWORKER_REMOVED, actor=lm, case_id=case.pk,
                 object_type="grant", object_id=grant.pk)
    assert removed.reason == keyworker.get_username()
    for event in watch.new():
        assert (event.actor_id, event.case_id) == (lm.pk, case.pk)

    with refused_unchanged(NotFound):
        do_create_note(acting_user=keyworker, **_note_kwargs(case))


def test_removing_a_keyworker_twice_is_refused(world):
    lm = _locality_manager(world)
    grant = do_add_keyworker(acting_user=lm, case=world.other_case,
                             user=world.user(Role.MENTAL_HEALTH_PRACTITIONER))
    do_remove_keyworker(acting_user=lm, grant=grant)
    with refused_unchanged() as caught:
        do_remove_keyworker(acting_user=lm, grant=grant)
    assert caught.value.messages == ["This keyworker's access has already ended."]


def test_a_keyworker_cannot_remove_themselves_or_be_removed_by_another_team(world):
    lm, keyworker = _locality_manager(world), world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    grant = do_add_keyworker(acting_user=lm, case=world.other_case, user=keyworker)
    for acting in (keyworker, world.team_manager, world.locality_users[Role.SOCIAL_WORKER]):
        with refused_unchanged(NotFound):
            do_remove_keyworker(acting_user=acting, grant=grant)
    assert policy.case_access(keyworker, world.other_case) is not None


# --- transfers ---------------------------------------------------------------------------

REASON = "Step down: the plan has ended and early help can meet the family's needs."


def _request(world, **overrides):
    kwargs = {"acting_user": world.team_manager, "case": world.case,
              "to_team": world.locality_team, "reason": REASON}
    kwargs.update(overrides)
    return do_request_transfer(**kwargs)


def _decide(world, transfer, *, accept=True, reason="Agreed at the allocation meeting."):
    return do_decide_transfer(acting_user=_locality_manager(world), transfer=transfer,
                              accept=accept, reason=reason)


def _standing(world, case):
    """Everyone's access to `case`, as (permissions, sources, expires_at)."""
    answers = {}
    for user in [*world.fs_members(), *world.locality_members()]:
        access = policy.case_access(user, case)
        answers[user.pk] = None if access is None else (
            access.permissions, access.sources, access.expires_at)
    return answers


def test_case_manager_requests_a_transfer(world):
    tm, case = world.team_manager, world.case
    standing = _standing(world, case)
    watch = AuditWatch()

    transfer = _request(world, reason=f"  {REASON}  ")

    stored = CaseTransfer.objects.get(pk=transfer.pk)
    assert (stored.case_id, stored.from_team_id, stored.to_team_id, stored.status) == (
        case.pk, world.fs_team.pk, world.locality_team.pk, CaseTransfer.Status.REQUESTED)
    assert (stored.reason, stored.handover_days, stored.requested_by_id) == (
        REASON, settings.HANDOVER_DAYS, tm.pk)
    assert stored.decided_by_id is None and stored.handover_ends_at is None
    assert_history(stored, user=tm, history_type="+")
    assert watch.actions() == [A.TRANSFER_REQUESTED]
    event = watch.one(A.TRANSFER_REQUESTED)
    assert_audit(event, action=A.TRANSFER_REQUESTED, actor=tm, case_id=case.pk,
                 object_type="transfer", object_id=transfer.pk)
    assert event.reason == f"to {world.locality_team.name}: {REASON}"
    # A request moves nothing.
    assert Case.objects.get(pk=case.pk).allocated_team_id == world.fs_team.pk
    assert _standing(world, case) == standing


def _inactive_new_team(world):
    team = do_save_team(acting_user=world.bootstrap_admin, team=Team(
        name="Dacorum Hub (closed)", kind=Team.Kind.HUB, is_active=False))
    return {"to_team": team}


def _deactivated_locality_team(world):
    team = world.locality_team
    team.is_active = False
    do_save_team(acting_user=world.bootstrap_admin, team=team)
    return {"to_team": Team.objects.get(pk=team.pk)}


BAD_REQUESTS = {
    "same team": (lambda w: {"to_team": w.fs_team}, "to_team"),
    "no team": (lambda w: {"to_team": None}, "to_team"),
    "new inactive team": (_inactive_new_team, "to_team"),
    "deactivated team": (_deactivated_locality_team, "to_team"),
    "blank reason": (lambda w: {"reason": "  \n "}, "reason"),
    "reason too long": (lambda w: {"reason": "x" * 1001}, "reason"),
    "negative hand-over": (lambda w: {"handover_days": -1}, "handover_days"),
    "hand-over too long": (lambda w: {"handover_days": settings.HANDOVER_DAYS_MAX + 1},
                           "handover_days"),
}


@pytest.mark.parametrize("bad", list(BAD_REQUESTS))
def test_bad_transfer_request_is_refused_unchanged(world, bad):
    make, field = BAD_REQUESTS[bad]
    overrides = make(world)
    with refused_unchanged() as caught:
        _request(world, **overrides)
    assert list(caught.value.message_dict) == [field]
    assert not CaseTransfer.objects.exists()


def test_hand_over_period_of_91_days_names_the_limits(world):
    with refused_unchanged() as caught:
        _request(world, handover_days=91)
    assert caught.value.message_dict == {
        "handover_days": [f"The hand-over period must be between 0 and {settings.HANDOVER_DAYS_MAX} days."]}


@pytest.mark.parametrize("days", [0, settings.HANDOVER_DAYS_MAX])
def test_hand_over_period_limits_are_accepted(world, days):
    transfer = _request(world, handover_days=days)
    assert CaseTransfer.objects.get(pk=transfer.pk).handover_days == days


def test_a_second_open_transfer_request_is_refused(world):
    first = _request(world)
    with refused_unchanged() as caught:
        _request(world, reason="Another go.")
    assert caught.value.message_dict == {NON_FIELD_ERRORS: [
        "There is already an open transfer request for this case. "
        "Withdraw it before making another."]}
    assert list(CaseTransfer.objects.values_list("pk", flat=True)) == [first.pk]


def test_a_closed_case_cannot_be_transferred(world):
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        _request(world)
    assert caught.value.message_dict == {NON_FIELD_ERRORS: [
        "This case is closed. A closed case cannot be transferred."]}


@pytest.mark.parametrize("who", ["social_worker", "locality_manager", "ig_officer"])
def test_only_the_case_manager_may_request_a_transfer(world, who):
    acting = {"social_worker": world.social_worker, "locality_manager": _locality_manager(world),
              "ig_officer": world.user(Role.IG_OFFICER)}[who]
    with refused_unchanged(NotFound):
        _request(world, acting_user=acting)


def test_case_manager_withdraws_a_transfer_request(world):
    tm = world.team_manager
    transfer = _request(world)
    watch = AuditWatch()

    do_withdraw_transfer(acting_user=tm, transfer=transfer)

    stored = CaseTransfer.objects.get(pk=transfer.pk)
    assert (stored.status, stored.decided_by_id) == (CaseTransfer.Status.WITHDRAWN, tm.pk)
    assert stored.decided_at is not None
    assert_history(stored, user=tm, history_type="~")
    assert watch.actions() == [A.TRANSFER_WITHDRAWN]
    assert_audit(watch.one(A.TRANSFER_WITHDRAWN), action=A.TRANSFER_WITHDRAWN, actor=tm,
                 case_id=world.case.pk, object_type="transfer", object_id=transfer.pk)
    assert Case.objects.get(pk=world.case.pk).allocated_team_id == world.fs_team.pk

    with refused_unchanged() as caught:
        do_withdraw_transfer(acting_user=tm, transfer=transfer)
    assert caught.value.messages == ["This request has already been withdrawn."]
    with refused_unchanged() as caught:
        _decide(world, transfer)
    assert caught.value.messages == ["This request has already been withdrawn."]
    # Withdrawn, it no longer blocks a new request.
    assert _request(world, reason="Trying again.").status == CaseTransfer.Status.REQUESTED


def test_only_the_case_manager_may_withdraw_a_transfer_request(world):
    transfer = _request(world)
    for acting in (world.social_worker, _locality_manager(world)):
        with refused_unchanged(NotFound):
            do_withdraw_transfer(acting_user=acting, transfer=transfer)
    assert CaseTransfer.objects.get(pk=transfer.pk).status == CaseTransfer.Status.REQUESTED


def test_rejecting_a_transfer_needs_a_reason(world):
    transfer = _request(world)
    for blank in ("", "   "):
        with refused_unchanged() as caught:
            _decide(world, transfer, accept=False, reason=blank)
        assert caught.value.message_dict == {"decision_reason": ["Enter the reason for your decision."]}
    with refused_unchanged() as caught:
        _decide(world, transfer, accept=True, reason=" ")
    assert caught.value.message_dict == {"decision_reason": ["Enter the reason for your decision."]}


def test_receiving_manager_rejects_a_transfer_and_access_is_unchanged(world):
    lm, case = _locality_manager(world), world.case
    transfer = _request(world)
    standing = _standing(world, case)
    watch = AuditWatch()

    _decide(world, transfer, accept=False, reason="  Threshold for early help not met.  ")

    stored = CaseTransfer.objects.get(pk=transfer.pk)
    assert (stored.status, stored.decided_by_id, stored.decision_reason) == (
        CaseTransfer.Status.REJECTED, lm.pk, "Threshold for early help not met.")
    assert stored.handover_ends_at is None
    assert_history(stored, user=lm, history_type="~")
    assert watch.actions() == [A.TRANSFER_REJECTED]
    event = watch.one(A.TRANSFER_REJECTED)
    assert_audit(event, action=A.TRANSFER_REJECTED, actor=lm, case_id=case.pk,
                 object_type="transfer", object_id=transfer.pk)
    assert event.reason == "Threshold for early help not met."
    assert Case.objects.get(pk=case.pk).allocated_team_id == world.fs_team.pk
    assert _standing(world, case) == standing
    assert policy.case_access(world.locality_users[Role.SOCIAL_WORKER], case) is None
    assert policy.case_access(world.team_manager, case).is_case_manager


def test_accepting_a_transfer_moves_the_case_and_leaves_the_old_team_read_only(world):
    tm, lm, case = world.team_manager, _locality_manager(world), world.case
    earlier = world.standard_note(world.social_worker, body="Written before the transfer.")
    transfer = _request(world)
    watch = AuditWatch()
    before = timezone.now()

    _decide(world, transfer)

    after = timezone.now()
    stored = CaseTransfer.objects.get(pk=transfer.pk)
    assert (stored.status, stored.decided_by_id, stored.decision_reason) == (
        CaseTransfer.Status.ACCEPTED, lm.pk, "Agreed at the allocation meeting.")
    ends = stored.handover_ends_at
    assert before + HANDOVER <= ends <= after + HANDOVER
    assert_history(stored, user=lm, history_type="~")
    moved = Case.objects.get(pk=case.pk)
    assert (moved.allocated_team_id, moved.lead_practitioner_id) == (world.locality_team.pk, None)

    # The receiving team works the case.
    for user in world.locality_members():
        access = policy.case_access(user, moved)
        assert access is not None, user
        assert access.can_view and access.can_contribute
        assert (access.sources, access.expires_at) == ({Source.TEAM}, None)
        assert _visible(user, moved)
    assert policy.case_access(lm, moved).is_case_manager
    assert policy.can(lm, Action.MANAGE_CASE_ACCESS, moved)

    # The old team may read, for the hand-over period only.
    for user in world.fs_members():
        access = policy.case_access(user, moved)
        assert access is not None, user
        assert access.can_view and not access.can_contribute
        assert Source.HANDOVER in access.sources
        assert access.expires_at == ends
        assert not access.is_case_manager
        assert not policy.can(user, Action.ADD_NOTE, moved)
    assert not policy.can(tm, Action.MANAGE_CASE_ACCESS, moved)
    fs_rows = CaseGroupObjectPermission.objects.filter(content_object=case, group=world.fs_team.group)
    assert [(r.permission.codename, r.expires_at) for r in fs_rows] == [("view_case", ends)]

    # Audit: all by the receiving manager.
    assert Counter(watch.actions()) == Counter({
        A.TRANSFER_ACCEPTED: 1, A.CASE_ALLOCATED: 1, A.PERMISSION_GRANTED: 3,
        A.PERMISSION_REVOKED: 1})
    assert_audit(watch.one(A.TRANSFER_ACCEPTED), action=A.TRANSFER_ACCEPTED, actor=lm,
                 case_id=case.pk, object_type="transfer", object_id=transfer.pk)
    allocated = watch.one(A.CASE_ALLOCATED)
    assert_audit(allocated, action=A.CASE_ALLOCATED, actor=lm, case_id=case.pk,
                 object_type="case", object_id=case.pk)
    assert allocated.reason == f"from {world.fs_team.name} to {world.locality_team.name}"
    assert {e.actor_id for e in watch.new()} == {lm.pk}

    # History: the reallocation, by the receiving manager; the record moved with the case.
    latest = moved.history.order_by("-history_id").first()
    assert (latest.history_type, latest.history_user_id) == ("~", lm.pk)
    assert (latest.allocated_team_id, latest.lead_practitioner_id) == (world.locality_team.pk, None)
    assert CaseNote.objects.get(pk=earlier.pk).case_id == case.pk
    locality_sw = world.locality_users[Role.SOCIAL_WORKER]
    access = policy.case_access(locality_sw, moved)
    assert earlier.pk in set(policy.visible_notes(access).values_list("pk", flat=True))
    assert _level(locality_sw, earlier) == NoteLevel.FULL
    assert _level(world.social_worker, earlier) == NoteLevel.FULL
    assert _events(case)[-1][1] == "case.updated"


def test_the_old_team_cannot_write_during_the_hand_over(world):
    _decide(world, _request(world))
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, **_note_kwargs(world.case))
    assert caught.value.messages == ["You cannot add notes to this case."]


def test_a_transfer_cannot_be_decided_twice(world):
    transfer = _request(world)
    _decide(world, transfer)
    for accept in (True, False):
        with refused_unchanged() as caught:
            _decide(world, transfer, accept=accept, reason="Changed my mind.")
        assert caught.value.messages == ["This request has already been accepted."]


def test_a_request_for_a_case_closed_since_can_only_be_rejected(world):
    transfer = _request(world)
    do_close_case(acting_user=world.team_manager, case=world.case)
    with refused_unchanged() as caught:
        _decide(world, transfer)
    assert caught.value.messages == [
        "This case has changed since the request was made (closed, moved or the team made "
        "inactive). Reject the request instead."]
    _decide(world, transfer, accept=False, reason="The case has been closed.")
    assert CaseTransfer.objects.get(pk=transfer.pk).status == CaseTransfer.Status.REJECTED
    assert Case.objects.get(pk=world.case.pk).allocated_team_id == world.fs_team.pk


@pytest.mark.parametrize("who", ["fs_manager", "locality_social_worker", "ig_officer",
                                 "superuser"])
def test_only_the_receiving_teams_manager_may_decide(world, who):
    acting = {"fs_manager": world.team_manager,
              "locality_social_worker": world.locality_users[Role.SOCIAL_WORKER],
              "ig_officer": world.user(Role.IG_OFFICER),
              "superuser": world.bootstrap_admin}[who]
    transfer = _request(world)
    for accept in (True, False):
        with refused_unchanged(NotFound):
            do_decide_transfer(acting_user=acting, transfer=transfer, accept=accept,
                               reason="Deciding for someone else's team.")
    assert CaseTransfer.objects.get(pk=transfer.pk).status == CaseTransfer.Status.REQUESTED


def test_the_old_teams_access_ends_by_itself_when_the_hand_over_ends(world):
    case = world.case
    transfer = _decide(world, _request(world))
    ends = CaseTransfer.objects.get(pk=transfer.pk).handover_ends_at
    locality_sw = world.locality_users[Role.SOCIAL_WORKER]

    with clock_at(ends - datetime.timedelta(minutes=1)):
        for user in world.fs_members():
            access = policy.case_access(user, case)
            assert access is not None and access.can_view and not access.can_contribute
            assert _visible(user, case)
    for moment in (ends, ends + datetime.timedelta(days=1)):
        with clock_at(moment):
            for user in world.fs_members():
                assert policy.case_access(user, case) is None, user
                assert not _visible(user, case)
            # The new team is unaffected.
            assert policy.case_access(locality_sw, case).can_contribute
            assert _visible(locality_sw, case)
    # No job ran: the hand-over row is still there; the policy ignores it once ended.
    assert CaseGroupObjectPermission.objects.filter(
        content_object=case, group=world.fs_team.group, expires_at=ends).exists()


def test_a_transfer_with_no_hand_over_ends_the_old_teams_access_at_once(world):
    case = world.case
    transfer = _request(world, handover_days=0)
    watch = AuditWatch()

    _decide(world, transfer)

    for user in world.fs_members():
        assert policy.case_access(user, case) is None, user
        assert not _visible(user, case)
    assert not CaseGroupObjectPermission.objects.filter(
        content_object=case, group=world.fs_team.group).exists()
    revoked = [e for e in watch.new() if e.action == A.PERMISSION_REVOKED]
    assert sorted(e.reason.split(" ")[0] for e in revoked) == ["contribute_to_case", "view_case"]
    assert policy.case_access(world.locality_users[Role.SOCIAL_WORKER], case).can_contribute


def test_transfer_back_during_the_hand_over_restores_the_old_teams_standing_access(world):
    tm, lm, case = world.team_manager, _locality_manager(world), world.case
    first = _decide(world, _request(world))
    first_ends = CaseTransfer.objects.get(pk=first.pk).handover_ends_at

    back = do_request_transfer(acting_user=lm, case=case, to_team=world.fs_team,
                               reason="Step up: new incident reported by police.")
    watch = AuditWatch()
    do_decide_transfer(acting_user=tm, transfer=back, accept=True, reason="Risk has escalated.")

    assert Case.objects.get(pk=case.pk).allocated_team_id == world.fs_team.pk
    for user in world.fs_members():
        access = policy.case_access(user, case)
        assert access is not None and access.can_view and access.can_contribute, user
        assert (access.sources, access.expires_at) == ({Source.TEAM}, None)
    fs_rows = CaseGroupObjectPermission.objects.filter(content_object=case, group=world.fs_team.group)
    assert sorted((r.permission.codename, r.expires_at) for r in fs_rows) == [
        ("contribute_to_case", None), ("view_case", None)]
    assert policy.case_access(tm, case).is_case_manager
    assert {e.actor_id for e in watch.new()} == {tm.pk}

    # Long after both hand-overs: the FS team still works the case, the locality team is gone.
    with clock_at(first_ends + datetime.timedelta(days=1)):
        for user in world.fs_members():
            access = policy.case_access(user, case)
            assert access is not None and access.can_contribute, user
        for user in world.locality_members():
            assert policy.case_access(user, case) is None, user


# --- break-glass ---------------------------------------------------------------------------

def _open(world, user=None, *, case=None, reason_code="immediate_risk",
          reason="Police called at 02:10 about a disturbance at the family home."):
    return do_open_break_glass(acting_user=user or world.user(Role.PROBATION_OFFICER),
                               case=case or world.other_case, reason_code=reason_code,
                               reason=reason)


@pytest.mark.requires_postgres
@pytest.mark.parametrize("change", ["remove_keyworker", "end_emergency", "review_and_end"])
def test_changes_to_a_grant_lock_its_case_before_the_grant(world, change):
    """Adding a keyworker ends their running emergency access under the case's lock; an
    action that locked the grant first and then waited for the case could deadlock
    with it (one a server error). Every change to a grant takes the case's lock first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from casenotes.actions import do_end_break_glass, do_review_break_glass

    if change == "remove_keyworker":
        grant = do_add_keyworker(acting_user=world.team_manager, case=world.case,
                                 user=world.locality_users[Role.SOCIAL_WORKER])
    else:
        grant = _open(world, case=world.case, user=world.locality_users[Role.SOCIAL_WORKER])
    with CaptureQueriesContext(connection) as queries:
        if change == "remove_keyworker":
            do_remove_keyworker(acting_user=world.team_manager, grant=grant)
        elif change == "end_emergency":
            do_end_break_glass(acting_user=world.team_manager, grant=grant)
        else:
            do_review_break_glass(acting_user=world.user(Role.IG_OFFICER), grant=grant,
                                  review=CaseGrant.Review.APPROPRIATE, end_now=True)
    locked = [q["sql"] for q in queries.captured_queries if "FOR NO KEY UPDATE" in q["sql"]]
    tables = [("case" if 'FROM "casenotes_case"' in sql else
               "grant" if 'FROM "casenotes_casegrant"' in sql else "other") for sql in locked]
    assert "grant" in tables and tables.index("case") < tables.index("grant"), tables


def test_break_glass_gives_read_only_access_to_standard_content(world):
    case = world.other_case
    user = world.user(Role.PROBATION_OFFICER)
    own_agency_colleague = world.locality_users[Role.PROBATION_OFFICER]
    standard = world.standard_note(world.locality_users[Role.SOCIAL_WORKER], case=case)
    restricted = world.restricted_note(own_agency_colleague, case=case)
    sealed = world.sealed_note(world.locality_users[Role.DA_VICTIM_WORKER], case=case,
                               readers=[own_agency_colleague])
    assert world.agency_of(own_agency_colleague) == world.agency_of(user)
    assert policy.case_access(user, case) is None
    watch = AuditWatch()
    before = timezone.now()

    grant = _open(world, user)

    after = timezone.now()
    stored = CaseGrant.objects.get(pk=grant.pk)
    assert (stored.case_id, stored.user_id, stored.kind, stored.granted_by_id) == (
        case.pk, user.pk, CaseGrant.Kind.BREAK_GLASS, user.pk)
    assert (stored.reason_code, stored.reason) == (
        "immediate_risk", "Police called at 02:10 about a disturbance at the family home.")
    assert stored.expires_at == stored.starts_at + BREAK_GLASS
    assert before + BREAK_GLASS <= stored.expires_at <= after + BREAK_GLASS
    assert_history(stored, user=user, history_type="+")
    rows = CaseUserObjectPermission.objects.filter(grant=grant)
    assert [r.permission.codename for r in rows] == ["view_case"]

    access = policy.case_access(user, case)
    assert access is not None
    assert access.is_break_glass and access.break_glass_id == grant.pk
    assert access.can_view and not access.can_contribute
    assert access.sources == {Source.BREAK_GLASS}
    assert access.expires_at == stored.expires_at
    assert _visible(user, case)
    assert policy.note_level(access, standard) == NoteLevel.FULL
    assert policy.note_level(access, restricted) == NoteLevel.PLACEHOLDER
    assert policy.note_level(access, sealed) == NoteLevel.HIDDEN

    assert watch.actions() == [A.PERMISSION_GRANTED, A.BREAK_GLASS_OPENED]
    opened = watch.one(A.BREAK_GLASS_OPENED)
    assert_audit(opened, action=A.BREAK_GLASS_OPENED, actor=user, case_id=case.pk,
                 object_type="case", object_id=case.pk)
    assert opened.reason == (
        "Immediate risk to a child: Police called at 02:10 about a disturbance at the family home.")
    assert [e.break_glass_id for e in watch.new()] == [grant.pk, grant.pk]


def test_break_glass_cannot_write_to_the_case(world):
    case = world.other_case
    user = world.user(Role.PROBATION_OFFICER)
    standard = world.standard_note(world.locality_users[Role.SOCIAL_WORKER], case=case)
    _open(world, user)
    with refused_unchanged((NotFound, ValidationError)):
        do_create_note(acting_user=user, finalise=True, **_note_kwargs(case))
    with refused_unchanged((NotFound, ValidationError)):
        do_add_addendum(acting_user=user, note=standard, body="Seen under emergency access.")
    with refused_unchanged((NotFound, ValidationError)):
        do_add_keyworker(acting_user=user, case=case, user=world.social_worker)
    assert not CaseNote.objects.filter(author=user).exists()


def test_entries_made_under_break_glass_carry_the_grant(world):
    case = world.other_case
    user = world.user(Role.PROBATION_OFFICER)
    standard = world.standard_note(world.locality_users[Role.SOCIAL_WORKER], case=case)
    restricted = world.restricted_note(world.locality_users[Role.PROBATION_OFFICER], case=case)
    sealed = world.sealed_note(world.locality_users[Role.DA_VICTIM_WORKER], case=case)
    grant = _open(world, user)
    watch = AuditWatch()

    access = policy.access_case(user, case.pk)
    page = case_page(access)

    assert access.break_glass_id == grant.pk
    shown = {note.pk: full for note, full in page["entries"]}
    assert shown == {standard.pk: True, restricted.pk: False}
    assert sealed.pk not in shown
    entries = watch.new()
    assert A.CASE_VIEWED in watch.actions()
    viewed = watch.one(A.CASE_VIEWED)
    assert_audit(viewed, action=A.CASE_VIEWED, actor=user, case_id=case.pk,
                 object_type="case", object_id=case.pk)
    assert entries and all(e.break_glass_id == grant.pk for e in entries)

    # A member of the team reading the same page is not marked.
    member_watch = AuditWatch()
    case_page(policy.access_case(world.locality_users[Role.SOCIAL_WORKER], case.pk))
    assert [e.break_glass_id for e in member_watch.new()] == [None]


@pytest.mark.parametrize(("reason_code", "reason", "field", "message"), [
    ("gut_feeling", "Just checking.", "reason_code", "Choose why you need emergency access."),
    ("", "", "reason_code", "Choose why you need emergency access."),
    ("other", "", "reason", "Explain why you need emergency access."),
    ("other", "   \n ", "reason", "Explain why you need emergency access."),
    ("out_of_hours", "x" * 501, "reason",
     "The reason must be 500 characters or fewer (it has 501)."),
])
def test_bad_break_glass_reason_is_refused_unchanged(world, reason_code, reason, field, message):
    user = world.user(Role.PROBATION_OFFICER)
    with refused_unchanged() as caught:
        _open(world, user, reason_code=reason_code, reason=reason)
    assert caught.value.message_dict == {field: [message]}
    assert policy.case_access(user, world.other_case) is None


def test_break_glass_for_other_reason_with_an_explanation_is_accepted(world):
    grant = _open(world, reason_code="other", reason="  Duty manager asked me to check.  ")
    stored = CaseGrant.objects.get(pk=grant.pk)
    assert (stored.reason_code, stored.reason) == ("other", "Duty manager asked me to check.")


def test_break_glass_on_a_case_the_user_already_has_is_refused(world):
    with refused_unchanged() as caught:
        _open(world, world.social_worker, case=world.case)
    assert caught.value.messages == [
        "You already have access to this case. Open it from your caseload or the search results."]


@pytest.mark.parametrize("who", ["ig_officer", "administrator", "superuser"])
def test_only_practitioners_may_break_glass(world, who):
    user = {"ig_officer": world.user(Role.IG_OFFICER),
            "administrator": world.user(Role.ADMINISTRATOR),
            "superuser": world.bootstrap_admin}[who]
    with refused_unchanged(NotFound):
        _open(world, user)
    assert policy.case_access(user, world.other_case) is None


def test_break_glass_ends_by_itself_after_the_set_hours(world):
    case = world.other_case
    user = world.user(Role.PROBATION_OFFICER)
    grant = _open(world, user)
    ends = CaseGrant.objects.get(pk=grant.pk).expires_at

    with clock_at(ends - datetime.timedelta(minutes=1)):
        access = policy.case_access(user, case)
        assert access is not None and access.is_break_glass
        assert _visible(user, case)
    for moment in (ends, ends + datetime.timedelta(hours=1)):
        with clock_at(moment):
            assert policy.case_access(user, case) is None
            assert not _visible(user, case)
            assert policy.case_access(world.locality_users[Role.SOCIAL_WORKER], case) is not None
    assert CaseGrant.objects.get(pk=grant.pk).ended_at is None  # no job ran


# --- sealed notes: readers -----------------------------------------------------------------

def _versions(note) -> list:
    return list(CaseNote.objects.get(pk=note.pk).history.order_by("history_id"))


def test_author_adds_a_reader_to_a_sealed_note(world):
    author, kept, added = (world.user(Role.DA_VICTIM_WORKER), world.user(Role.PROBATION_OFFICER),
                           world.team_manager)
    note = world.sealed_note(author, readers=[kept])
    assert _level(added, note) == NoteLevel.HIDDEN
    versions = _versions(note)
    watch = AuditWatch()

    do_share_sealed_note(acting_user=author, note=note, readers=[kept, added])

    assert set(CaseNote.objects.get(pk=note.pk).readers.values_list("pk", flat=True)) == {
        kept.pk, added.pk}
    assert _level(added, note) == NoteLevel.FULL
    assert _level(kept, note) == NoteLevel.FULL
    assert _level(world.social_worker, note) == NoteLevel.HIDDEN
    assert watch.actions() == [A.SEALED_SHARED]
    shared = watch.one(A.SEALED_SHARED)
    assert_audit(shared, action=A.SEALED_SHARED, actor=author, case_id=world.case.pk,
                 object_type="note", object_id=note.pk)
    assert shared.reason == f"with {added.get_username()}"
    new_versions = _versions(note)[len(versions):]
    assert len(new_versions) == 1, "one history version per change"
    assert (new_versions[0].history_type, new_versions[0].history_user_id) == ("~", author.pk)
    assert {r.user_id for r in new_versions[0].readers.all()} == {kept.pk, added.pk}


def test_author_removes_a_reader_from_a_sealed_note(world):
    author, kept, removed = (world.user(Role.DA_VICTIM_WORKER),
                             world.user(Role.PROBATION_OFFICER), world.team_manager)
    note = world.sealed_note(author, readers=[kept, removed])
    assert _level(removed, note) == NoteLevel.FULL
    versions = _versions(note)
    watch = AuditWatch()

    do_share_sealed_note(acting_user=author, note=note, readers=[kept])

    assert list(CaseNote.objects.get(pk=note.pk).readers.values_list("pk", flat=True)) == [kept.pk]
    assert _level(removed, note) == NoteLevel.HIDDEN
    assert _level(kept, note) == NoteLevel.FULL
    assert watch.actions() == [A.SEALED_UNSHARED]
    unshared = watch.one(A.SEALED_UNSHARED)
    assert_audit(unshared, action=A.SEALED_UNSHARED, actor=author, case_id=world.case.pk,
                 object_type="note", object_id=note.pk)
    assert unshared.reason == f"from {removed.get_username()}"
    new_versions = _versions(note)[len(versions):]
    assert len(new_versions) == 1, "one history version per change"
    assert (new_versions[0].history_type, new_versions[0].history_user_id) == ("~", author.pk)
    assert {r.user_id for r in new_versions[0].readers.all()} == {kept.pk}


def test_swapping_readers_is_one_version_with_both_entries(world):
    author, old, new = (world.user(Role.DA_VICTIM_WORKER), world.user(Role.PROBATION_OFFICER),
                        world.user(Role.RECOVERY_WORKER))
    note = world.sealed_note(author, readers=[old])
    versions = _versions(note)
    watch = AuditWatch()

    do_share_sealed_note(acting_user=author, note=note, readers=[new])

    assert watch.actions() == [A.SEALED_SHARED, A.SEALED_UNSHARED]
    new_versions = _versions(note)[len(versions):]
    assert [(v.history_type, v.history_user_id) for v in new_versions] == [("~", author.pk)]
    assert {r.user_id for r in new_versions[0].readers.all()} == {new.pk}


def test_sharing_with_the_same_readers_changes_nothing(world):
    author, reader = world.user(Role.DA_VICTIM_WORKER), world.team_manager
    note = world.sealed_note(author, readers=[reader])
    with_events = access_fingerprint()
    do_share_sealed_note(acting_user=author, note=note, readers=[reader, author])
    assert access_fingerprint() == with_events


@pytest.mark.parametrize("who", ["reader", "team_manager", "same_agency_colleague"])
def test_only_the_author_may_change_a_sealed_notes_readers(world, who):
    author, reader = world.user(Role.DA_VICTIM_WORKER), world.user(Role.PROBATION_OFFICER)
    note = world.sealed_note(author, readers=[reader])
    acting = {"reader": reader, "team_manager": world.team_manager,
              "same_agency_colleague": world.user(Role.DA_VICTIM_WORKER, 1)}[who]
    with refused_unchanged(NotFound):
        do_share_sealed_note(acting_user=acting, note=note, readers=[reader, world.social_worker])


def test_a_draft_sealed_note_cannot_be_shared(world):
    author = world.user(Role.DA_VICTIM_WORKER)
    note = world.draft(author, sensitivity=S.SEALED)
    with refused_unchanged(NotFound):
        do_share_sealed_note(acting_user=author, note=note, readers=[world.team_manager])


@pytest.mark.parametrize("who", ["locality_social_worker", "ig_officer"])
def test_a_sealed_note_reader_must_work_on_the_case(world, who):
    outsider = {"locality_social_worker": world.locality_users[Role.SOCIAL_WORKER],
                "ig_officer": world.user(Role.IG_OFFICER)}[who]
    author = world.user(Role.DA_VICTIM_WORKER)
    note = world.sealed_note(author)
    with refused_unchanged() as caught:
        do_share_sealed_note(acting_user=author, note=note, readers=[world.team_manager, outsider])
    assert caught.value.message_dict == {
        "readers": ["Named readers must be people working on this case."]}


def test_a_removed_reader_is_told_the_note_is_withdrawn_after_commit(
    world, django_capture_on_commit_callbacks, sent
):
    case = world.case
    author, kept, removed = (world.user(Role.DA_VICTIM_WORKER),
                             world.user(Role.PROBATION_OFFICER), world.team_manager)
    note = world.sealed_note(author, readers=[kept, removed])

    with django_capture_on_commit_callbacks(execute=True):
        do_share_sealed_note(acting_user=author, note=note, readers=[kept])
        assert sent == []  # nothing before commit

    event = CaseEvent.objects.get(case=case, kind=CaseEvent.Kind.NOTE_SHARED, note=note)
    withdrawn = [(group, message) for group, message in sent if message.get("kind") == "note.withdrawn"]
    assert withdrawn == [(live.viewer_group(case.pk, removed.pk), {
        "type": "case.event", "seq": event.seq, "kind": "note.withdrawn", "note": note.pk})]
    # The note itself now goes only to its author and remaining reader.
    shared = {group for group, message in sent if message.get("kind") == "note.shared"}
    assert shared == {live.viewer_group(case.pk, author.pk), live.viewer_group(case.pk, kept.pk)}


# --- per-person restriction ------------------------------------------------------------------

def test_case_member_records_an_adults_specialist_agency(world):
    sw, dean = world.social_worker, world.people["dean"]
    da_service = world.agencies[Agency.Kind.DOMESTIC_ABUSE]
    watch = AuditWatch()

    person = do_set_specialist_agency(acting_user=sw, person=dean, agency=da_service)

    assert Person.objects.get(pk=dean.pk).specialist_agency_id == da_service.pk
    assert_history(person, user=sw, history_type="~")
    assert watch.actions() == [A.PERSON_UPDATED]
    event = watch.one(A.PERSON_UPDATED)
    assert_audit(event, action=A.PERSON_UPDATED, actor=sw, case_id=world.case.pk,
                 object_type="person", object_id=dean.pk)
    assert event.reason == f"specialist agency: {da_service.short_name}"


def test_a_child_cannot_have_a_specialist_agency(world):
    with refused_unchanged() as caught:
        do_set_specialist_agency(acting_user=world.social_worker, person=world.people["ellie"],
                                 agency=world.agencies[Agency.Kind.DOMESTIC_ABUSE])
    assert caught.value.message_dict == {
        "specialist_agency": ["A specialist agency is recorded for adults only."]}


def test_only_case_members_may_set_a_specialist_agency(world):
    for acting in (world.locality_users[Role.SOCIAL_WORKER], world.user(Role.IG_OFFICER)):
        with refused_unchanged(NotFound):
            do_set_specialist_agency(acting_user=acting, person=world.people["dean"],
                                     agency=world.agencies[Agency.Kind.DOMESTIC_ABUSE])


def _dean_with_da_service(world):
    dean = world.people["dean"]
    do_set_specialist_agency(acting_user=world.social_worker, person=dean,
                             agency=world.agencies[Agency.Kind.DOMESTIC_ABUSE])
    return Person.objects.get(pk=dean.pk)


def test_a_note_limited_to_an_adults_specialist_agency(world):
    sw, dean = world.social_worker, _dean_with_da_service(world)
    da_service = world.agencies[Agency.Kind.DOMESTIC_ABUSE]

    note = do_create_note(acting_user=sw, finalise=True, **_note_kwargs(
        world.case, sensitivity=S.AGENCY_RESTRICTED, people=[dean], restricted_person=dean,
        body="Dean's programme worker reports a disclosure in group work."))

    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.restricted_person_id, stored.restricted_agency_id) == (dean.pk, da_service.pk)
    assert stored.author_agency == world.agency_of(sw)
    da_members = [*world.pair(Role.DA_VICTIM_WORKER), *world.pair(Role.DA_PERPETRATOR_WORKER)]
    for user in da_members:
        assert world.agency_of(user) == da_service
        assert _level(user, note) == NoteLevel.FULL, user
    own_agency = [world.user(Role.SOCIAL_WORKER, 1), *world.pair(Role.FAMILY_SUPPORT_WORKER)]
    for user in own_agency:
        assert world.agency_of(user) == world.agency_of(sw)
        assert _level(user, note) == NoteLevel.PLACEHOLDER, user
    for user in world.pair(Role.TEAM_MANAGER):
        assert _level(user, note) == NoteLevel.FULL, user
    assert _level(sw, note) == NoteLevel.FULL
    for role in (Role.PROBATION_OFFICER, Role.MENTAL_HEALTH_PRACTITIONER, Role.RECOVERY_WORKER):
        for user in world.pair(role):
            assert _level(user, note) == NoteLevel.PLACEHOLDER, user

    # A later change to Dean does not move the audience of what was written.
    do_set_specialist_agency(acting_user=sw, person=dean,
                             agency=world.agencies[Agency.Kind.PROBATION])
    assert CaseNote.objects.get(pk=note.pk).restricted_agency_id == da_service.pk
    assert _level(world.user(Role.DA_VICTIM_WORKER), note) == NoteLevel.FULL
    assert _level(world.user(Role.PROBATION_OFFICER), note) == NoteLevel.PLACEHOLDER


BAD_RESTRICTIONS = {
    "a child": lambda w: {"sensitivity": S.AGENCY_RESTRICTED, "people": [w.people["ellie"]],
                          "restricted_person": w.people["ellie"]},
    "not among people": lambda w: {"sensitivity": S.AGENCY_RESTRICTED,
                                   "people": [w.people["kayleigh"]],
                                   "restricted_person": w.people["dean"]},
    "standard note": lambda w: {"sensitivity": S.STANDARD, "people": [w.people["dean"]],
                                "restricted_person": w.people["dean"]},
    "sealed note": lambda w: {"sensitivity": S.SEALED, "people": [w.people["dean"]],
                              "restricted_person": w.people["dean"]},
    "no specialist agency": lambda w: {"sensitivity": S.AGENCY_RESTRICTED,
                                       "people": [w.people["kayleigh"]],
                                       "restricted_person": w.people["kayleigh"]},
    "another family": lambda w: {"sensitivity": S.AGENCY_RESTRICTED,
                                 "people": [w.people["dean"]],
                                 "restricted_person": w.other_people["abena"]},
}


@pytest.mark.parametrize("bad", list(BAD_RESTRICTIONS))
def test_bad_restricted_person_is_refused_naming_the_field(world, bad):
    _dean_with_da_service(world)
    with refused_unchanged() as caught:
        do_create_note(acting_user=world.social_worker, finalise=True,
                       **_note_kwargs(world.case, **BAD_RESTRICTIONS[bad](world)))
    assert list(caught.value.message_dict) == ["restricted_person"]


# --- revocation reaches open connections --------------------------------------------------------

def test_removing_a_keyworker_asks_their_connections_to_recheck_after_commit(
    world, django_capture_on_commit_callbacks, sent
):
    lm, keyworker = _locality_manager(world), world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    grant = do_add_keyworker(acting_user=lm, case=world.other_case, user=keyworker)

    with django_capture_on_commit_callbacks(execute=True):
        do_remove_keyworker(acting_user=lm, grant=grant)
        assert sent == []  # nothing before commit

    assert sent == [(live.user_group(keyworker.pk), RECHECK)]


def test_adding_a_keyworker_asks_their_connections_to_recheck(
    world, django_capture_on_commit_callbacks, sent
):
    keyworker = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    with django_capture_on_commit_callbacks(execute=True):
        do_add_keyworker(acting_user=_locality_manager(world), case=world.other_case,
                         user=keyworker)
    assert sent == [(live.user_group(keyworker.pk), RECHECK)]


@pytest.mark.parametrize("handover_days", [settings.HANDOVER_DAYS, 0])
def test_accepting_a_transfer_asks_both_teams_connections_to_recheck_after_commit(
    world, django_capture_on_commit_callbacks, sent, handover_days
):
    transfer = _request(world, handover_days=handover_days)

    with django_capture_on_commit_callbacks(execute=True):
        _decide(world, transfer)
        assert sent == []  # nothing before commit

    rechecked = [group for group, message in sent if message == RECHECK]
    expected = {live.user_group(u.pk) for u in [*world.fs_members(), *world.locality_members()]}
    assert set(rechecked) == expected
    assert len(rechecked) == len(expected)
    others = [(group, message) for group, message in sent if message != RECHECK]
    assert [(g, m["kind"]) for g, m in others] == [(live.case_group(world.case.pk), "case.updated")]


def test_rejecting_a_transfer_sends_no_recheck(world, django_capture_on_commit_callbacks, sent):
    transfer = _request(world)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(world, transfer, accept=False, reason="Not this time.")
    assert sent == []
