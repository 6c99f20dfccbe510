"""What the page header needs to know about the signed-in user (evaluated only when a
page shows the header: one query, two for a team manager)."""

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
        # Requests waiting for this manager's decision, shown beside "Transfers".
        self.transfers_waiting = CaseTransfer.objects.filter(
            to_team_id__in=managed, status=CaseTransfer.Status.REQUESTED).count() if managed else 0


def navigation(request):
    return {"nav_roles": SimpleLazyObject(lambda: _Navigation(getattr(request, "user", None)))}
