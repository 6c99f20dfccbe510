"""The organisation actions: accounts, agencies, teams and memberships — each with its
history row and audit entry, refused to anyone but an administrator, and validated."""

import datetime
from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.models import AuditAction
from casenotes.permissions import policy
from teams.actions import (
    do_create_user,
    do_end_membership,
    do_save_agency,
    do_save_membership,
    do_save_team,
)
from teams.models import Agency, Membership, Role, Team
from tests.factories import create_member
from tests.helpers import AuditWatch, assert_audit, assert_history

User = get_user_model()
TODAY = timezone.localdate


def _org_fingerprint():
    from audit.models import AuditEvent

    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "is_superuser")),
        "agencies": list(Agency.objects.order_by("pk").values_list("pk", "name", "short_name")),
        "teams": list(Team.objects.order_by("pk").values_list("pk", "name", "is_active")),
        "groups": Group.objects.count(),
        "memberships": list(Membership.objects.order_by("pk").values_list(
            "pk", "user_id", "team_id", "role", "start_date", "end_date")),
        "history": (
            User.history.model.objects.count(), Agency.history.model.objects.count(),
            Team.history.model.objects.count(), Membership.history.model.objects.count(),
        ),
        "audit": AuditEvent.objects.count(),
    }


@contextmanager
def refused_unchanged(exception):
    before = _org_fingerprint()
    with pytest.raises(exception) as caught:
        yield caught
    assert _org_fingerprint() == before


@pytest.fixture
def administrator(world):
    """An administrator by role (not a superuser)."""
    user = world.user(Role.ADMINISTRATOR)
    assert not user.is_superuser
    return user


# --- the writes ---------------------------------------------------------------------

def test_bootstrap_superuser_is_created_without_an_acting_user(db):
    watch = AuditWatch()
    user = do_create_user(acting_user=None, username="first.admin", password="long-enough-pass-1",
                          is_superuser=True)
    assert user.is_superuser and user.is_staff and user.check_password("long-enough-pass-1")
    assert_history(user, user=None, history_type="+")
    event = watch.one(AuditAction.USER_CREATED)
    assert_audit(event, action=AuditAction.USER_CREATED, actor=None, object_type="user",
                 object_id=user.pk)
    assert event.actor_label == "system"
    assert policy.can(user, "manage_organisation")


def test_administrator_creates_an_account(world, administrator):
    watch = AuditWatch()
    user = do_create_user(acting_user=administrator, username="new.starter",
                          password="long-enough-pass-2", first_name="New", last_name="Starter",
                          email="new.starter@example.gov.uk")
    stored = User.objects.get(pk=user.pk)
    assert (stored.first_name, stored.is_staff, stored.is_superuser) == ("New", False, False)
    assert stored.check_password("long-enough-pass-2")
    assert_history(stored, user=administrator, history_type="+")
    assert not hasattr(stored.history.first(), "password")  # history never keeps the hash
    assert_audit(watch.one(AuditAction.USER_CREATED), action=AuditAction.USER_CREATED,
                 actor=administrator, object_type="user", object_id=user.pk)


def test_administrator_creates_and_renames_an_agency(world, administrator):
    watch = AuditWatch()
    agency = do_save_agency(acting_user=administrator, agency=Agency(
        name="Hertfordshire Constabulary", short_name="Police", kind=Agency.Kind.OTHER))
    assert_history(agency, user=administrator, history_type="+")
    assert_audit(watch.one(AuditAction.AGENCY_SAVED), action=AuditAction.AGENCY_SAVED,
                 actor=administrator, object_type="agency", object_id=agency.pk)

    watch = AuditWatch()
    agency.short_name = "Herts Police"
    do_save_agency(acting_user=world.bootstrap_admin, agency=agency)
    assert Agency.objects.get(pk=agency.pk).short_name == "Herts Police"
    assert_history(agency, user=world.bootstrap_admin, history_type="~")
    assert_audit(watch.one(AuditAction.AGENCY_SAVED), action=AuditAction.AGENCY_SAVED,
                 actor=world.bootstrap_admin, object_type="agency", object_id=agency.pk)


def test_new_team_gets_its_own_permission_group(world, administrator):
    watch = AuditWatch()
    team = do_save_team(acting_user=administrator, team=Team(
        name="No Wrong Door Hub", kind=Team.Kind.HUB))
    assert team.group_id is not None
    assert team.group_id not in {world.fs_team.group_id, world.locality_team.group_id}
    assert_history(team, user=administrator, history_type="+")
    assert_audit(watch.one(AuditAction.TEAM_SAVED), action=AuditAction.TEAM_SAVED,
                 actor=administrator, object_type="team", object_id=team.pk)

    group_id = team.group_id
    team.name = "No Wrong Door Hub (North)"
    do_save_team(acting_user=administrator, team=team)
    assert Team.objects.get(pk=team.pk).group_id == group_id  # renaming keeps the group
    assert_history(team, user=administrator, history_type="~")


def test_administrator_adds_a_membership(world, administrator):
    user = do_create_user(acting_user=administrator, username="new.sw", password="long-pass-3x")
    watch = AuditWatch()
    membership = do_save_membership(acting_user=administrator, membership=Membership(
        user=user, team=world.fs_team, agency=world.agency_of(world.social_worker),
        role=Role.SOCIAL_WORKER, start_date=TODAY()))
    assert_history(membership, user=administrator, history_type="+")
    assert_audit(watch.one(AuditAction.MEMBERSHIP_SAVED), action=AuditAction.MEMBERSHIP_SAVED,
                 actor=administrator, object_type="membership", object_id=membership.pk)
    assert policy.case_access(user, world.case) is not None


def test_administrator_ends_a_membership(world, administrator):
    member = world.user(Role.RECOVERY_WORKER)
    membership = world.memberships[member.pk]
    watch = AuditWatch()
    ended = do_end_membership(acting_user=administrator, membership=membership)
    assert Membership.objects.get(pk=membership.pk).end_date == TODAY()
    assert_history(ended, user=administrator, history_type="~")
    assert_audit(watch.one(AuditAction.MEMBERSHIP_ENDED), action=AuditAction.MEMBERSHIP_ENDED,
                 actor=administrator, object_type="membership", object_id=membership.pk)
    assert policy.case_access(member, world.case) is None


def test_superuser_counts_as_administrator(world):
    team = do_save_team(acting_user=world.bootstrap_admin, team=Team(
        name="Leeds Family Valued", kind=Team.Kind.LOCALITY))
    assert team.pk is not None


# --- who may ------------------------------------------------------------------------

def _every_write(world):
    member = world.user(Role.SOCIAL_WORKER, 1)
    return {
        "create user": lambda u: do_create_user(
            acting_user=u, username="sneaky", password="long-enough-pass-4", is_superuser=True),
        "save agency": lambda u: do_save_agency(acting_user=u, agency=Agency(
            name="Fake Agency", short_name="Fake", kind=Agency.Kind.OTHER)),
        "rename agency": lambda u: do_save_agency(
            acting_user=u, agency=Agency.objects.get(pk=world.agency_of(member).pk)),
        "save team": lambda u: do_save_team(acting_user=u, team=Team(
            name="Shadow Team", kind=Team.Kind.HUB)),
        "save membership": lambda u: do_save_membership(acting_user=u, membership=Membership(
            user=u, team=None, agency=world.agency_of(member), role=Role.ADMINISTRATOR)),
        "end membership": lambda u: do_end_membership(
            acting_user=u, membership=world.memberships[member.pk]),
    }


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMINISTRATOR])
def test_non_administrators_are_refused_every_organisation_write(world, role):
    for index in (0, 1):
        user = world.user(role, index)
        for name, write in _every_write(world).items():
            with refused_unchanged(PermissionDenied) as caught:
                write(user)
            assert str(caught.value) == (
                "Only administrators manage agencies, teams and memberships."), name


def test_administrator_whose_membership_ended_is_refused(world, administrator):
    do_end_membership(acting_user=world.bootstrap_admin,
                      membership=world.memberships[administrator.pk])
    for write in _every_write(world).values():
        with refused_unchanged(PermissionDenied):
            write(administrator)


def test_anonymous_and_inactive_users_are_refused(world):
    from django.contrib.auth.models import AnonymousUser

    inactive = User.objects.get(pk=world.user(Role.ADMINISTRATOR, 1).pk)
    inactive.is_active = False
    for user in (AnonymousUser(), inactive):
        with refused_unchanged(PermissionDenied):
            do_save_team(acting_user=user, team=Team(name="Nope", kind=Team.Kind.HUB))


# --- membership validation ------------------------------------------------------------

@pytest.mark.parametrize("role", sorted(r for r in Role if r not in (
    Role.IG_OFFICER, Role.ADMINISTRATOR)))
def test_case_roles_need_a_team(world, administrator, role):
    user = do_create_user(acting_user=administrator, username=f"new.{role}", password="pass-5-long")
    with refused_unchanged(ValidationError) as caught:
        do_save_membership(acting_user=administrator, membership=Membership(
            user=user, team=None, agency=world.agencies["childrens_social_care"], role=role))
    assert caught.value.message_dict == {"team": ["Choose the team this practitioner works in."]}


@pytest.mark.parametrize("role", [Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_organisation_wide_roles_may_not_have_a_team(world, administrator, role):
    user = do_create_user(acting_user=administrator, username=f"new.{role}", password="pass-6-long")
    with refused_unchanged(ValidationError) as caught:
        do_save_membership(acting_user=administrator, membership=Membership(
            user=user, team=world.fs_team, agency=world.agencies["childrens_social_care"],
            role=role))
    assert caught.value.message_dict == {
        "team": ["IG officers and administrators are not members of a case team."]}


def test_membership_cannot_end_before_it_starts(world, administrator):
    user = do_create_user(acting_user=administrator, username="new.pb", password="pass-7-long")
    with refused_unchanged(ValidationError) as caught:
        do_save_membership(acting_user=administrator, membership=Membership(
            user=user, team=world.fs_team, agency=world.agencies["probation"],
            role=Role.PROBATION_OFFICER, start_date=TODAY(),
            end_date=TODAY() - datetime.timedelta(days=1)))
    assert caught.value.message_dict == {
        "end_date": ["The end date must be on or after the start date."]}


def test_ending_a_membership_before_its_start_is_refused(world, administrator):
    _, membership = create_member(
        administrator, role=Role.SOCIAL_WORKER, team=world.fs_team,
        agency=world.agencies["childrens_social_care"],
        start_date=TODAY() + datetime.timedelta(days=7))
    with refused_unchanged(ValidationError) as caught:
        do_end_membership(acting_user=administrator, membership=membership, end_date=TODAY())
    assert caught.value.message_dict == {
        "end_date": ["The end date must be on or after the start date."]}
