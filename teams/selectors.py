"""Reads about who works where."""

from django.utils import timezone

from audit.actions import Actor
from teams.models import Membership, Role


def _current(user, memberships) -> list[Membership]:
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    return list(
        memberships.filter(user=user).select_related("agency", "team").order_by("start_date", "id")
    )


def active_memberships(user) -> list[Membership]:
    """The user's memberships in force today (ended or future ones grant nothing)."""
    return _current(user, Membership.objects.active(timezone.localdate()))


def active_case_memberships(user) -> list[Membership]:
    """Active memberships in active teams with a case-working role."""
    return _current(user, Membership.objects.case_working(timezone.localdate()))


def is_administrator(user) -> bool:
    """Manages the organisation (agencies, teams, accounts); never case content."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or any(m.role == Role.ADMINISTRATOR for m in active_memberships(user))


def is_ig_officer(user) -> bool:
    """Audits access; reads the audit trail, never case content by default."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return any(m.role == Role.IG_OFFICER for m in active_memberships(user))


def actor_for(user, membership: Membership | None = None) -> Actor:
    """The audit trail's snapshot of a user, in the capacity of `membership` if given."""
    if user is None or not user.is_authenticated:
        return Actor(user_id=None, label="anonymous")
    if membership is None:
        memberships = active_memberships(user)
        membership = memberships[0] if memberships else None
    return Actor(
        user_id=user.pk,
        label=user.get_username(),
        agency=membership.agency.name if membership else "",
        role=membership.get_role_display() if membership else "",
    )


def team_members(team, on=None) -> list[Membership]:
    """Who works in `team` today (or on `on`), with their role and agency."""
    return list(
        Membership.objects.active(on or timezone.localdate())
        .filter(team=team)
        .select_related("user", "agency")
        .order_by("role", "user__last_name")
    )
