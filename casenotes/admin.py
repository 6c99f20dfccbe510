"""Cases in the administration site: read-only, with history and object permissions.

Case notes and addenda are deliberately not registered: administrators see no note
bodies, and the historical note tables are not exposed either. Every page here shows
case data, so each writes its audit entry before it answers (`AuditedReadsAdmin`).
"""

from django.contrib import admin

from casenotes.models import Case, CaseGroupObjectPermission, CaseUserObjectPermission
from workspace.history_admin import AuditedReadsAdmin


class ReadOnlyCaseDataAdmin(AuditedReadsAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyCaseDataAdmin):
    audit_object_type = "case"
    list_display = ["reference", "family_name", "status", "category", "allocated_team"]
    list_filter = ["status", "category", "allocated_team"]
    search_fields = ["reference", "family_name"]
    readonly_fields = ["object_permissions"]

    @admin.display(description="Object permissions")
    def object_permissions(self, obj):
        teams = [
            f"team {r.group.team.name}: {r.permission.codename}"
            for r in CaseGroupObjectPermission.objects.filter(content_object=obj)
            .select_related("group__team", "permission")
        ]
        users = [
            f"{r.user.get_username()}: {r.permission.codename}"
            for r in CaseUserObjectPermission.objects.filter(content_object=obj)
            .select_related("user", "permission")
        ]
        return "; ".join(teams + users) or "None"

    def audit_case_id(self, obj) -> int:
        return obj.pk


class CasePermissionAdmin(ReadOnlyCaseDataAdmin):
    list_display = ["content_object", "permission"]
    list_select_related = ["content_object", "permission"]

    def audit_case_id(self, obj) -> int:
        return obj.content_object_id


@admin.register(CaseGroupObjectPermission)
class CaseGroupObjectPermissionAdmin(CasePermissionAdmin):
    audit_object_type = "case team permission"
    list_display = ["content_object", "group", "permission"]
    list_select_related = ["content_object", "group", "permission"]


@admin.register(CaseUserObjectPermission)
class CaseUserObjectPermissionAdmin(CasePermissionAdmin):
    audit_object_type = "case user permission"
    list_display = ["content_object", "user", "permission"]
    list_select_related = ["content_object", "user", "permission"]
