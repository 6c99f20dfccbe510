"""Reads about who works where."""

from django.utils import timezone

from audit.actions import Actor
from teams.models import Agency, Membership, Role, Team
from workspace.prepared import Date, Int, Prepared


def _current(user, memberships) -> list[Membership]:
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    return list(
        memberships.filter(user=user).select_related("agency", "team").order_by("start_date", "id")
    )


def active_memberships(user) -> list[Membership]:
    """The user's memberships in force today (ended or future ones grant nothing)."""
    return _current(user, Membership.objects.active(timezone.localdate()))


def _attnames(model, through: str = "") -> list[str]:
    return [through + field.attname for field in model._meta.concrete_fields]


# Asked by every case access (casenotes.permissions), so prepared: each membership
# with its team and agency, as `_current` reads them with select_related.
_CASE_MEMBERSHIPS = Prepared(
    lambda user_id, on: Membership.objects.case_working(on).filter(user_id=user_id)
    .order_by("start_date", "id")
    .values_list(*_attnames(Membership), *_attnames(Team, "team__"), *_attnames(Agency, "agency__")),
    user_id=Int, on=Date,
)
#: Where a row's team and agency columns begin.
_TEAM_AT = len(Membership._meta.concrete_fields)
_AGENCY_AT = _TEAM_AT + len(Team._meta.concrete_fields)


def active_case_memberships(user) -> list[Membership]:
    """Active memberships in active teams with a case-working role, each with its team
    and agency."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    found = []
    for row in _CASE_MEMBERSHIPS.rows(user_id=user.pk, on=timezone.localdate()):
        membership = Membership.from_db("default", None, row[:_TEAM_AT])
        membership.team = Team.from_db("default", None, row[_TEAM_AT:_AGENCY_AT])
        membership.agency = Agency.from_db("default", None, row[_AGENCY_AT:])
        found.append(membership)
    return found


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
