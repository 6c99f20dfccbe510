"""What the page header needs to know about the signed-in user (evaluated only when a
page shows the header: two queries, three for a team manager)."""

from django.utils.functional import SimpleLazyObject

from teams.models import Role


class _Navigation:
    def __init__(self, user):
        from casenotes.models import CaseTransfer
        from teams.selectors import active_memberships

        memberships = active_memberships(user) if user is not None else []
        managed = [m.team_id for m in memberships if m.role == Role.TEAM_MANAGER]
        self.manages_team = bool(managed)
        self.is_ig_officer = any(m.role == Role.IG_OFFICER for m in memberships)
        # Caseload, search and actions are for those who work cases (not IG, not admin).
        self.works_cases = any(m.works_cases for m in memberships)
        # Requests waiting for this manager's decision, shown beside "Transfers".
        self.transfers_waiting = CaseTransfer.objects.filter(
            to_team_id__in=managed, status=CaseTransfer.Status.REQUESTED).count() if managed else 0
        # Overdue actions from group case discussions, shown beside "My actions".
        self.actions_overdue = _overdue_actions(user) if memberships else 0


def _overdue_actions(user) -> int:
    from django.utils import timezone

    from discussions.models import AgreedAction

    return AgreedAction.objects.filter(owner=user, state=AgreedAction.State.OPEN,
                                       due_on__lt=timezone.localdate()).count()


def navigation(request):
    from django.conf import settings

    return {"nav_roles": SimpleLazyObject(lambda: _Navigation(getattr(request, "user", None))),
            "session_idle_minutes": settings.SESSION_IDLE_MINUTES,
            "session_warning_minutes": settings.SESSION_WARNING_MINUTES}
