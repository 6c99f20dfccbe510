from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from audit.actions import record
from audit.models import AuditAction
from casenotes import selectors as case_selectors
from casenotes.permissions import Action, policy
from casenotes.views.notes import _add_action_errors
from discussions.selectors import team_discussions
from teams.selectors import actor_for, team_members


@login_required
def team_detail(request, team_id):
    team = policy.access_team(request.user, team_id)
    cases = case_selectors.team_cases(request.user, team)
    record(actor=actor_for(request.user), action=AuditAction.TEAM_VIEWED, object_type="team",
           object_id=team.pk, reason=f"{len(cases)} open cases listed")
    return render(request, "teams/team_detail.html", {
        "team": team, "members": team_members(team), "cases": cases,
        "can_create_case": policy.can(request.user, Action.CREATE_CASE, team),
        "can_schedule": policy.can(request.user, Action.SCHEDULE_DISCUSSION, team),
        **team_discussions(team),
    })


class PasswordChangeForm(forms.Form):
    """What the page asks; teams.actions.do_change_own_password checks the password itself."""

    current_password = forms.CharField(
        strip=False, max_length=4096, error_messages={"required": "Enter your current password."})
    new_password = forms.CharField(
        strip=False, max_length=4096, error_messages={"required": "Enter a new password."})
    new_password_again = forms.CharField(
        strip=False, max_length=4096, error_messages={"required": "Enter the new password again."})

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password_again") and (
                data["new_password"] != data["new_password_again"]):
            self.add_error("new_password_again",
                           "The two new passwords are different. Enter the same one twice.")
        return data


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Change one's own password: this session stays signed in, every other one ends."""
    from teams.actions import do_change_own_password

    form = PasswordChangeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = do_change_own_password(
                request=request, current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"])
        except ValidationError as refused:
            _add_action_errors(form, refused)
        else:
            update_session_auth_hash(request, user)  # this session stays; its key is renewed
            messages.success(request, "Your password has been changed. You have been signed out "
                                      "everywhere else.")
            return redirect("casenotes:caseload")
    return render(request, "registration/password_change.html", {"form": form, "nav": "account"},
                  status=400 if form.errors else 200)

