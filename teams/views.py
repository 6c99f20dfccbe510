from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from audit.actions import record
from audit.models import AuditAction
from casenotes.permissions import Action, policy
from discussions.selectors import team_discussions
from teams.selectors import actor_for, team_members


@login_required
def team_detail(request, team_id):
    team = policy.access_team(request.user, team_id)
    cases = policy.visible_cases(request.user, team.cases.filter(status="open")).select_related(
        "lead_practitioner")
    record(actor=actor_for(request.user), action=AuditAction.TEAM_VIEWED, object_type="team",
           object_id=team.pk)
    return render(request, "teams/team_detail.html", {
        "team": team, "members": team_members(team), "cases": cases,
        "can_create_case": policy.can(request.user, Action.CREATE_CASE, team),
        "can_schedule": policy.can(request.user, Action.SCHEDULE_DISCUSSION, team),
        **team_discussions(team),
    })
