"""Administration of agencies, teams, memberships and accounts.

Every save goes through teams.actions (validation, history user, audit entry).
Records are never deleted here: memberships are ended, teams made inactive.
"""

import contextvars

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from teams import actions
from teams.models import Agency, Membership, Team
from workspace.history_admin import HistoryAdmin, record_case_reads


class NoDeleteHistoryAdmin(HistoryAdmin):
    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Agency)
class AgencyAdmin(NoDeleteHistoryAdmin):
    list_display = ["name", "short_name", "kind"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        actions.do_save_agency(acting_user=request.user, agency=obj)


@admin.register(Team)
class TeamAdmin(NoDeleteHistoryAdmin):
    list_display = ["name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["case_permissions"]

    def save_model(self, request, obj, form, change):
        actions.do_save_team(acting_user=request.user, team=obj)

    @admin.display(description="Case permissions held by this team")
    def case_permissions(self, obj):
        from casenotes.models import CaseGroupObjectPermission

        if obj.pk is None:
            return "—"
        rows = CaseGroupObjectPermission.objects.filter(group_id=obj.group_id).select_related(
            "content_object", "permission").order_by("content_object__reference")
        return ", ".join(f"{r.content_object.reference}: {r.permission.codename}" for r in rows) or "None"

    def _record_cases(self, request, response, object_id, page: str) -> None:
        # The team's page and its versions list the cases it holds permissions on: a read
        # of those cases, one entry each, before the page answers (`record_case_reads`).
        from casenotes.models import CaseGroupObjectPermission

        team = self.get_object(request, unquote(object_id))
        if response.status_code != 200 or team is None:
            return
        case_ids = CaseGroupObjectPermission.objects.filter(
            group_id=team.group_id).values_list("content_object_id", flat=True)
        record_case_reads(request, object_type="team", object_id=object_id,
                          case_ids=list(case_ids), page=page)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        self._record_cases(request, response, object_id, "record: the cases it holds permissions on")
        return response

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        response = super().history_form_view(request, object_id, version_id, extra_context)
        self._record_cases(request, response, object_id,
                           f"version {version_id}: the cases it holds permissions on")
        return response


@admin.register(Membership)
class MembershipAdmin(NoDeleteHistoryAdmin):
    list_display = ["user", "role", "agency", "team", "start_date", "end_date"]
    list_filter = ["role", "agency", "team"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        actions.do_save_membership(acting_user=request.user, membership=obj)


User = get_user_model()
admin.site.unregister(User)


#: The administrator changing a password, for the form's save (one per request/thread).
_changing: contextvars.ContextVar = contextvars.ContextVar("password_changed_by")


class PasswordChangeForm(auth_forms.AdminPasswordChangeForm):
    """The admin's password form, saved through teams.actions.do_set_password (audited;
    the user's other sessions end)."""

    def save(self, commit=True):
        request = _changing.get()
        usable = self.cleaned_data.get("set_usable_password", True) not in (False, "false")
        keep = request.session.session_key if self.user.pk == request.user.pk else None
        return actions.do_set_password(
            acting_user=request.user, user=self.user,
            password=self.cleaned_data["password1"] if usable else None, keep_session=keep)


class PasswordButton(auth_forms.ReadOnlyPasswordHashWidget):
    """The password summary, its button linking to the account's password page by its
    full address (Django's relative link breaks on the pages of its history)."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def get_context(self, name, value, attrs):
        return {**super().get_context(name, value, attrs), "password_url": self.url}


class UserChangeForm(auth_forms.UserChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "password" in self.fields and self.instance.pk:
            self.fields["password"].widget = PasswordButton(
                reverse("admin:auth_user_password_change", args=[self.instance.pk]))


@admin.register(User)
class WorkspaceUserAdmin(UserAdmin, HistoryAdmin):
    """Accounts. Deactivate rather than delete: notes and audit entries name them.

    No groups or permissions are set here: team access comes from memberships (each
    team's group is the team's own, kept by teams.actions), and what anyone may do is
    decided by the policy, not by Django's permission flags."""

    form = UserChangeForm
    change_password_form = PasswordChangeForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Permissions"), {
            "fields": ("is_active", "is_staff", "is_superuser"),
            "description": "Teams, agencies and roles are set under Memberships.",
        }),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )

    def user_change_password(self, request, id, form_url=""):
        token = _changing.set(request)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _changing.reset(token)

    def save_model(self, request, obj, form, change):
        actions.do_save_user(acting_user=request.user, user=obj,
                             changed_fields=list(form.changed_data))

    def has_delete_permission(self, request, obj=None):
        return False

    actions = ["end_sessions", "reset_two_factor"]  # list actions (methods call the module)

    @admin.action(description="Sign out everywhere (end all sessions)")
    def end_sessions(self, request, queryset):
        ended = sum(actions.do_end_sessions(acting_user=request.user, user=user)
                    for user in queryset)
        self.message_user(request, f"Ended {ended} session(s) of {queryset.count()} account(s).")

    @admin.action(description="Reset two-factor sign-in (lost phone)")
    def reset_two_factor(self, request, queryset):
        for user in queryset:
            actions.do_reset_two_factor(acting_user=request.user, user=user)
        self.message_user(request, f"Reset two-factor sign-in of {queryset.count()} account(s); "
                                   "they set it up again at their next sign-in.")


admin.site.site_header = "Family Safeguarding Workspace administration"
admin.site.site_title = "Workspace administration"
