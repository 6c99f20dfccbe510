"""What the page header needs to know about the signed-in user (one query, only when
a page shows the header)."""

from django.utils.functional import SimpleLazyObject

from teams.models import Role


def navigation(request):
    def roles():
        from teams.selectors import active_memberships

        user = getattr(request, "user", None)
        return {m.role for m in active_memberships(user)} if user is not None else set()

    lazy_roles = SimpleLazyObject(lambda: _Roles(roles()))
    return {"nav_roles": lazy_roles}


class _Roles:
    def __init__(self, roles: set[str]):
        self.manages_team = Role.TEAM_MANAGER in roles
        self.is_ig_officer = Role.IG_OFFICER in roles
