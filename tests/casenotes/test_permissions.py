"""The permission policy: the matrix in policy_matrix.py, run for both users of each
role, plus the rules no single row can show (dates, deactivation, failing closed, cost)."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditAction, Outcome
from casenotes.actions import (
    do_add_addendum,
    do_add_keyworker,
    do_add_person,
    do_close_case,
    do_create_case,
    do_finalise_note,
    do_open_break_glass,
    do_update_draft,
)
from casenotes.models import Case, CaseNote, Person
from casenotes.permissions import Action, CaseAccess, NoteLevel, NotFound, policy
from teams.actions import do_end_membership, do_save_agency, do_save_team
from teams.models import CASE_ROLES, Agency, Membership, Role, Team
from teams.selectors import active_case_memberships
from tests.casenotes import policy_matrix as pm
from tests.factories import ORG_ROLES, create_member
from tests.helpers import AuditWatch, write_fingerprint


@pytest.fixture
def world(module_world, db):
    """Every test in this module shares one world (built once, rolled back at the end);
    each test's own writes are rolled back after it."""
    return module_world


REFUSED = (NotFound, ValidationError, PermissionDenied)


def _fingerprint():
    """Everything a refused action must leave untouched (no audit row either: a refused
    write is not a write)."""
    return {**write_fingerprint(), "agencies": Agency.objects.count(),
            "teams": Team.objects.count()}


def _attempt(expected: str, write):
    """Run `write`; if the row denies it, it must raise and change nothing."""
    if expected == pm.ALLOW:
        return write()
    before = _fingerprint()
    with pytest.raises(REFUSED):
        write()
    assert _fingerprint() == before
    return None


def _note_for(world, user, case, sensitivity: str) -> CaseNote:
    """The note a row's sensitivity describes, from the user's point of view."""
    other_agency = world.colleague(user, case, same_agency=False)
    if sensitivity == pm.STANDARD:
        return world.standard_note(other_agency, case=case)
    if sensitivity == pm.RESTRICTED_SAME_AGENCY:
        return world.restricted_note(world.colleague(user, case, same_agency=True), case=case)
    if sensitivity == pm.RESTRICTED_OTHER_AGENCY:
        return world.restricted_note(other_agency, case=case)
    if sensitivity == pm.SEALED_NAMED:
        return world.sealed_note(other_agency, readers=[user], case=case)
    if sensitivity == pm.SEALED_NOT_NAMED:
        # Shared with someone of the user's own agency: that is no share with the user.
        reader = world.colleague(user, case, same_agency=True, exclude=[other_agency])
        return world.sealed_note(other_agency, readers=[reader], case=case)
    if sensitivity == pm.DRAFT_BY_OTHER:
        return world.draft(other_agency, case=case)
    if sensitivity == pm.OWN_DRAFT:
        return world.draft(user, case=case)
    raise AssertionError(f"unknown sensitivity {sensitivity!r}")


# --- the matrix ---------------------------------------------------------------------

def _check_case_action(world, user, case, action: Action, expected: str) -> None:
    allowed = expected == pm.ALLOW
    team = case.allocated_team
    if action == Action.LIST_CASES:
        assert policy.can(user, Action.LIST_CASES) is True  # the list page; it may be empty
        assert policy.visible_cases(user).filter(pk=case.pk).exists() is allowed
    elif action == Action.VIEW_CASE:
        assert policy.can(user, action, case) is allowed
        if allowed:
            assert policy.access_case(user, case.pk).case.pk == case.pk
        else:
            watch = AuditWatch()
            with pytest.raises(NotFound):
                policy.access_case(user, case.pk)
            denied = watch.one(AuditAction.ACCESS_DENIED)
            assert (denied.outcome, denied.actor_id, denied.case_id) == (
                Outcome.DENIED, user.pk, case.pk)
    elif action == Action.ADD_NOTE:
        assert policy.can(user, action, case) is allowed
        note = _attempt(expected, lambda: world.standard_note(user, case=case))
        if allowed:
            assert note.author_id == user.pk and note.case_id == case.pk
    elif action == Action.ADD_PERSON:
        assert policy.can(user, action, case) is allowed
        person = _attempt(expected, lambda: do_add_person(
            acting_user=user, case=case, full_name="Maureen Harper",
            role_in_family=Person.RoleInFamily.GRANDPARENT))
        if allowed:
            assert person.case_id == case.pk
    elif action == Action.CLOSE_CASE:
        assert policy.can(user, action, case) is allowed
        closed = _attempt(expected, lambda: do_close_case(acting_user=user, case=case))
        if allowed:
            assert Case.objects.get(pk=closed.pk).status == Case.Status.CLOSED
    elif action == Action.VIEW_TEAM:
        assert policy.can(user, action, team) is allowed
        if allowed:
            assert policy.access_team(user, team.pk) == team
        else:
            with pytest.raises(NotFound):
                policy.access_team(user, team.pk)
    elif action == Action.CREATE_CASE:
        assert policy.can(user, action, team) is allowed
        created = _attempt(expected, lambda: do_create_case(
            acting_user=user, reference=f"NEW-{user.pk}", family_name="Mensah",
            category=Case.Category.CHILD_IN_NEED, team=team))
        if allowed:
            assert created.allocated_team_id == team.pk
    elif action == Action.MANAGE_ORGANISATION:
        assert policy.can(user, action) is allowed
        agency = _attempt(expected, lambda: do_save_agency(acting_user=user, agency=Agency(
            name="Hertfordshire Constabulary", short_name="Police", kind=Agency.Kind.OTHER)))
        if allowed:
            assert agency.pk is not None
    else:
        raise AssertionError(f"no check for {action}")


def _check_note_action(world, user, case, sensitivity, action: Action, expected: str) -> None:
    note = _note_for(world, user, case, sensitivity)
    access = policy.case_access(user, case)
    if action == Action.VIEW_NOTE:
        assert policy.note_level(access, note) == NoteLevel(expected)
        listed = access is not None and policy.visible_notes(access).filter(pk=note.pk).exists()
        assert listed is (expected != pm.HIDDEN)
        assert policy.can(user, action, note) is (expected == pm.FULL)
        if access is not None and expected == pm.FULL:
            assert policy.access_note(access, note.pk).body == note.body
        elif access is not None:
            with pytest.raises(NotFound):
                policy.access_note(access, note.pk)
        return

    allowed = expected == pm.ALLOW
    assert policy.can(user, action, note) is allowed
    if action == Action.EDIT_NOTE:
        edited = _attempt(expected, lambda: do_update_draft(
            acting_user=user, note=note, expected_version=note.version,
            note_type=note.note_type, occurred_at=note.occurred_at,
            body="Revised after speaking to the school.", sensitivity=note.sensitivity,
            readers=list(note.readers.all())))
        if allowed:
            assert (edited.version, edited.body) == (
                note.version + 1, "Revised after speaking to the school.")
    elif action == Action.FINALISE_NOTE:
        finalised = _attempt(expected, lambda: do_finalise_note(
            acting_user=user, note=note, expected_version=note.version))
        if allowed:
            assert CaseNote.objects.get(pk=finalised.pk).state == CaseNote.State.FINAL
    elif action == Action.AMEND_NOTE:
        addendum = _attempt(expected, lambda: do_add_addendum(
            acting_user=user, note=note, body="Correction: the visit was on Tuesday."))
        if allowed:
            assert addendum.note_id == note.pk
    else:
        raise AssertionError(f"no check for {action}")


def _row_id(row, index) -> str:
    role, relationship, sensitivity, action, expected = row
    parts = [role.value, relationship, sensitivity or "case", action.value, expected]
    return "-".join(parts) + f"-user{index + 1}"


@pytest.mark.parametrize(
    ("row", "index"),
    [pytest.param(row, index, id=_row_id(row, index)) for row in pm.MATRIX for index in (0, 1)],
)
def test_policy_matrix_row_holds_for_each_user_of_the_role(world, row, index):
    role, relationship, sensitivity, action, expected = row
    user = world.user(role, index)
    case = world.other_case if relationship == pm.OTHER_TEAM else world.case
    if action in pm.NOTE_ACTIONS:
        _check_note_action(world, user, case, sensitivity, action, expected)
    else:
        _check_case_action(world, user, case, action, expected)


# --- the matrix itself is complete ----------------------------------------------------

def test_every_policy_action_has_rows_in_one_of_the_two_matrices():
    """The policy's first actions are tabled here, per policy call; those of access
    governance in the endpoint matrix (tests/access_matrix.py), per page and socket."""
    from tests import access_matrix as am

    here = {row[3] for row in pm.MATRIX}
    assert here == set(Action) - set(am.POLICY_ACTIONS)
    assert not here & set(am.POLICY_ACTIONS), "an action tabled twice"
    endpoint_rows = {(row[2], row[3]) for row in am.MATRIX}
    for action, covered_by in am.POLICY_ACTIONS.items():
        assert covered_by in endpoint_rows or covered_by in am.OUTSIDE_CASE_DATA, action


def test_matrix_covers_every_role_relationship_and_sensitivity_once():
    from tests import access_matrix as am

    keys = [row[:4] for row in pm.MATRIX]
    assert len(keys) == len(set(keys)), "a row appears twice"
    case_actions = set(Action) - pm.NOTE_ACTIONS - set(am.POLICY_ACTIONS)
    for role in Role:
        relationships = [pm.ORG_WIDE] if role in ORG_ROLES else [pm.ALLOCATED, pm.OTHER_TEAM]
        assert {r[1] for r in pm.MATRIX if r[0] == role} == set(relationships)
        for relationship in relationships:
            rows = [r for r in pm.MATRIX if r[0] == role and r[1] == relationship]
            assert {r[3] for r in rows if r[2] is None} == case_actions
            sensitivities = set(pm.SENSITIVITIES)
            if relationship != pm.ALLOCATED:
                sensitivities -= {pm.SEALED_NAMED, pm.OWN_DRAFT}  # cannot exist, see header
            for sensitivity in sensitivities:
                assert {r[3] for r in rows if r[2] == sensitivity} == pm.NOTE_ACTIONS, (
                    role, relationship, sensitivity)
    for row in pm.MATRIX:
        allowed = {pm.FULL, pm.PLACEHOLDER, pm.HIDDEN} if row[3] == Action.VIEW_NOTE else {
            pm.ALLOW, pm.DENY}
        assert row[4] in allowed, row


def test_world_has_two_distinct_active_users_for_every_role(world):
    for role in Role:
        first, second = world.pair(role)
        assert first.pk != second.pk
        for user in (first, second):
            membership = Membership.objects.active().get(user=user)
            assert membership.role == role
            expected_team = None if role in ORG_ROLES else world.fs_team.pk
            assert membership.team_id == expected_team


# --- dates and account state ----------------------------------------------------------

def test_membership_ended_today_grants_nothing_at_the_next_check(world):
    user = world.user(Role.PROBATION_OFFICER)
    note = world.standard_note(world.social_worker)
    access = policy.case_access(user, world.case)
    assert access is not None and policy.note_level(access, note) == NoteLevel.FULL

    do_end_membership(acting_user=world.bootstrap_admin, membership=world.memberships[user.pk],
                      end_date=timezone.localdate())

    assert policy.case_access(user, world.case) is None
    assert not policy.can(user, Action.VIEW_CASE, world.case)
    assert not policy.can(user, Action.VIEW_NOTE, note)
    assert not policy.can(user, Action.VIEW_TEAM, world.fs_team)
    assert not policy.visible_cases(user).exists()
    # A CaseAccess decided before the end is not a pass: the next decision is made afresh.
    assert policy.note_level(policy.case_access(user, world.case), note) == NoteLevel.HIDDEN
    with pytest.raises(NotFound):
        policy.access_case(user, world.case.pk)
    with pytest.raises(NotFound):
        world.standard_note(user)


def test_membership_ending_tomorrow_still_grants_today(world):
    user = world.user(Role.PROBATION_OFFICER)
    do_end_membership(acting_user=world.bootstrap_admin, membership=world.memberships[user.pk],
                      end_date=timezone.localdate() + datetime.timedelta(days=1))
    assert policy.case_access(user, world.case) is not None
    assert policy.visible_cases(user).filter(pk=world.case.pk).exists()


def test_future_dated_membership_grants_nothing(world):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    newcomer, _ = create_member(
        world.bootstrap_admin, role=Role.SOCIAL_WORKER, team=world.fs_team,
        agency=world.agencies[Agency.Kind.CHILDRENS_SOCIAL_CARE], start_date=tomorrow)
    assert policy.case_access(newcomer, world.case) is None
    assert not policy.visible_cases(newcomer).exists()
    assert not policy.can(newcomer, Action.VIEW_TEAM, world.fs_team)
    with pytest.raises(NotFound):
        world.standard_note(newcomer)


def test_membership_starting_today_grants_access_today(world):
    newcomer, _ = create_member(
        world.bootstrap_admin, role=Role.SOCIAL_WORKER, team=world.fs_team,
        agency=world.agencies[Agency.Kind.CHILDRENS_SOCIAL_CARE], start_date=timezone.localdate())
    assert policy.case_access(newcomer, world.case) is not None


def test_inactive_user_gets_nothing(world):
    note = world.standard_note(world.team_manager)
    # A fresh copy, as the request would load a deactivated account.
    user = get_user_model().objects.get(pk=world.social_worker.pk)
    user.is_active = False
    assert policy.case_access(user, world.case) is None
    assert not policy.visible_cases(user).exists()
    assert not policy.can(user, Action.VIEW_CASE, world.case)
    assert not policy.can(user, Action.VIEW_NOTE, note)
    assert not policy.can(user, Action.LIST_CASES)
    assert active_case_memberships(user) == []


def test_inactive_team_grants_its_members_nothing(world):
    note = world.standard_note(world.team_manager)
    team = world.fs_team
    team.is_active = False
    try:
        do_save_team(acting_user=world.bootstrap_admin, team=team)
    finally:
        team.is_active = True  # the shared object; the database row is rolled back
    for user in world.fs_members():
        assert policy.case_access(user, world.case) is None
        assert not policy.can(user, Action.VIEW_NOTE, note)
        assert not policy.visible_cases(user).exists()


def test_superuser_administrators_and_ig_officers_see_no_case_and_no_note_body(world):
    sw, tm = world.social_worker, world.team_manager
    notes = [
        world.standard_note(sw),
        world.restricted_note(sw),
        world.sealed_note(sw, readers=[tm]),
        world.draft(sw),
        world.standard_note(world.locality_users[Role.FAMILY_SUPPORT_WORKER],
                            case=world.other_case),
    ]
    assert world.bootstrap_admin.is_superuser
    org_users = [world.bootstrap_admin, *world.pair(Role.ADMINISTRATOR), *world.pair(Role.IG_OFFICER)]
    for user in org_users:
        assert not policy.visible_cases(user).exists(), user
        for case in (world.case, world.other_case):
            assert policy.case_access(user, case) is None
            assert not policy.can(user, Action.VIEW_CASE, case)
            with pytest.raises(NotFound):
                policy.access_case(user, case.pk)
        for note in notes:
            assert policy.note_level(policy.case_access(user, note.case), note) == NoteLevel.HIDDEN
            assert not policy.can(user, Action.VIEW_NOTE, note)
            assert not policy.can(user, Action.AMEND_NOTE, note)


def test_a_note_id_from_another_case_is_not_found_through_this_case(world):
    foreign = world.standard_note(world.locality_users[Role.SOCIAL_WORKER], case=world.other_case)
    access = policy.case_access(world.social_worker, world.case)
    assert policy.note_level(access, foreign) == NoteLevel.HIDDEN
    assert not policy.visible_notes(access).filter(pk=foreign.pk).exists()
    watch = AuditWatch()
    with pytest.raises(NotFound):
        policy.access_note(access, foreign.pk)
    denied = watch.one(AuditAction.ACCESS_DENIED)
    assert (denied.object_type, denied.object_id, denied.case_id) == (
        "note", str(foreign.pk), world.case.pk)


@pytest.mark.parametrize("bad_id", ["", "abc", "-1", "0", str(2**63), None, "1; DROP TABLE x"])
def test_malformed_ids_are_not_found_like_missing_ones(world, bad_id):
    with pytest.raises(NotFound):
        policy.access_case(world.social_worker, bad_id)
    access = policy.case_access(world.social_worker, world.case)
    with pytest.raises(NotFound):
        policy.access_note(access, bad_id)
    with pytest.raises(NotFound):
        policy.access_team(world.social_worker, bad_id)


# --- failing closed ---------------------------------------------------------------------

def _boom(*args, **kwargs):
    raise RuntimeError("membership store unavailable")


def test_case_checks_deny_when_an_internal_raises(world, monkeypatch):
    user = world.social_worker
    assert policy.case_access(user, world.case) is not None
    # The membership store fails: the queryset (page reads) and the prepared read of
    # case-working memberships every case access runs (compiled once, so not through
    # the queryset again).
    monkeypatch.setattr("teams.models.MembershipQuerySet.active", _boom)
    monkeypatch.setattr("teams.selectors._CASE_MEMBERSHIPS.rows", _boom)

    assert policy.case_access(user, world.case) is None
    assert policy.can(user, Action.VIEW_CASE, world.case) is False
    assert policy.can(user, Action.ADD_NOTE, world.case) is False
    assert policy.can(user, Action.VIEW_TEAM, world.fs_team) is False
    assert policy.can(world.user(Role.ADMINISTRATOR), Action.MANAGE_ORGANISATION) is False
    assert list(policy.visible_cases(user)) == []
    watch = AuditWatch()
    with pytest.raises(NotFound):
        policy.access_case(user, world.case.pk)
    denied = watch.one(AuditAction.ACCESS_DENIED)
    assert (denied.outcome, denied.actor_id, denied.case_id) == (
        Outcome.DENIED, user.pk, world.case.pk)


def test_note_level_denies_when_an_internal_raises(world, monkeypatch):
    tm = world.team_manager
    restricted = world.restricted_note(world.user(Role.PROBATION_OFFICER))
    access = policy.case_access(tm, world.case)
    assert policy.note_level(access, restricted) == NoteLevel.FULL

    def broken(self):
        raise RuntimeError("role lookup failed")

    monkeypatch.setattr(CaseAccess, "is_case_manager", property(broken))
    # Not FULL, and not even the placeholder: an error shows nothing.
    assert policy.note_level(access, restricted) == NoteLevel.HIDDEN
    assert policy.can(tm, Action.VIEW_NOTE, restricted) is False
    assert policy.can(tm, Action.CLOSE_CASE, world.case) is False


# --- cost -----------------------------------------------------------------------------

def test_visible_cases_is_one_query(world, django_assert_num_queries):
    tm = world.team_manager
    for n in range(5):
        do_create_case(acting_user=tm, reference=f"FS-2025-10{n}", family_name=f"Family {n}",
                       category=Case.Category.CHILD_IN_NEED, team=world.fs_team)
    with django_assert_num_queries(1):
        cases = list(policy.visible_cases(world.user(Role.RECOVERY_WORKER)))
    assert len(cases) == 6
    assert world.case in cases and world.other_case not in cases


def test_case_accesses_answers_for_many_cases_in_three_queries_as_case_access_does_for_one(
        world):
    """The batch the discussion room and its page use decides each case exactly as the
    one-case check does (team, hand-over, keyworker, emergency access, none), and its
    cost does not grow with the number of cases."""
    tm, lm = world.team_manager, world.locality_users[Role.TEAM_MANAGER]
    extra = [do_create_case(acting_user=tm, reference=f"FS-2025-20{n}", family_name=f"Family {n}",
                            category=Case.Category.CHILD_IN_NEED, team=world.fs_team)
             for n in range(4)]
    keyworker = world.user(Role.PROBATION_OFFICER)
    do_add_keyworker(acting_user=lm, case=world.other_case, user=keyworker)
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    do_open_break_glass(acting_user=outsider, case=extra[0], reason_code="immediate_risk")
    cases = [world.case, world.other_case, *extra]
    users = [*world.fs_members(), *world.locality_members(), world.user(Role.IG_OFFICER)]
    decided = 0
    for user in users:
        with CaptureQueriesContext(connection) as queries:
            batch = policy.case_accesses(user, cases)
        assert len(queries) <= 3, [q["sql"] for q in queries]
        assert batch == {case.pk: policy.case_access(user, case) for case in cases}
        decided += sum(access is not None for access in batch.values())
    assert batch[world.case.pk] is None  # the IG officer: no case content by role
    assert policy.case_accesses(keyworker, cases)[world.other_case.pk].can_view
    assert policy.case_accesses(outsider, cases)[extra[0].pk].is_break_glass
    assert policy.discussion_case_accesses(outsider, cases)[extra[0].pk] is None
    assert 0 < decided < len(users) * len(cases)


def test_case_accesses_denies_every_case_when_the_check_fails(world, monkeypatch):
    def broken(user):
        raise RuntimeError("the membership table cannot be read")

    monkeypatch.setattr("casenotes.permissions.active_case_memberships", broken)
    found = policy.case_accesses(world.social_worker, [world.case, world.other_case])
    assert found == {world.case.pk: None, world.other_case.pk: None}


def _levels(access):
    return [(note.pk, policy.note_level(access, note)) for note in policy.visible_notes(access)]


def test_visible_notes_and_note_level_do_not_query_per_note(world, django_assert_num_queries):
    viewer = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    authors = [world.social_worker, world.user(Role.PROBATION_OFFICER), world.team_manager]

    def add_notes(count):
        for n in range(count):
            author = authors[n % len(authors)]
            kind = n % 4
            if kind == 0:
                world.standard_note(author)
            elif kind == 1:
                world.restricted_note(author)
            elif kind == 2:
                world.sealed_note(author, readers=[viewer] if n % 8 == 2 else [])
            else:
                world.draft(author)

    add_notes(4)
    access = policy.case_access(viewer, world.case)
    with django_assert_num_queries(1):
        few = _levels(access)
    add_notes(40)
    with django_assert_num_queries(1):
        many = _levels(access)
    assert len(many) > len(few) > 0
    levels = {level for _, level in many}
    assert levels == {NoteLevel.FULL, NoteLevel.PLACEHOLDER}  # hidden ones are never listed


def test_org_wide_roles_are_exactly_ig_officer_and_administrator():
    assert set(Role) - CASE_ROLES == set(ORG_ROLES)


def test_note_levels_decides_as_note_level_does_for_every_kind_of_note_and_viewer(
        world, django_assert_num_queries):
    """The case page's light path (`note_levels`, facts only) gives every viewer the same
    level for every note as `note_level` on the loaded note, in one query. Each kind
    comes twice with the same facts (decided once), beside others that differ in one."""
    probation, victim = world.user(Role.PROBATION_OFFICER), world.user(Role.DA_VICTIM_WORKER)
    for _ in range(2):
        world.standard_note(world.social_worker)
        world.restricted_note(probation)
        world.sealed_note(victim, readers=[world.social_worker])
        world.sealed_note(victim)
        world.draft(probation)
        world.draft(world.social_worker)
    world.standard_note(probation)
    world.restricted_note(world.user(Role.PROBATION_OFFICER, 1))
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    do_open_break_glass(acting_user=outsider, case=world.case, reason_code="immediate_risk")
    viewers = [world.user(role) for role in sorted(CASE_ROLES)] + [outsider]
    for viewer in viewers:
        access = policy.case_access(viewer, world.case)
        notes = policy.visible_notes(access).order_by("-occurred_at", "-id")
        expected = [(note.pk, policy.note_level(access, note)) for note in notes]
        with django_assert_num_queries(1):
            assert policy.note_levels(access, notes) == expected, viewer
