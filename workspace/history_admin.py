"""The administration site's history pages, for every model that keeps history, and
the audit entry of every administration page that shows case data."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db import models
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin

from audit.actions import Pending, record_many
from audit.models import AuditAction
from teams.selectors import actor_for
from workspace.forms import as_id


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's admin, with a version address that is not a version number
    answered 404 (simple-history's own view fails with a server error on it; a relative
    link on a version's page, such as the password button's, leads to one)."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not str(version_id).isdigit():
            raise Http404("No such version.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def response_action(self, request, queryset):
        """A list action with a selected record that cannot exist (not an id, or one no
        database could hold) is refused with a message and the list shown again; Django
        would send it to the database, a server error instead of a message."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        # Ids of another kind (text, UUIDs) keep Django's own checks.
        if isinstance(self.model._meta.pk, models.IntegerField) and any(
                as_id(value) == -1 for value in selected):
            self.message_user(request, "Choose the records from the list, then the action.",
                              messages.ERROR)
            return None
        return super().response_action(request, queryset)


def record_case_reads(request, *, object_type: str, object_id, case_ids, page: str) -> None:
    """One entry per case an administration page shows (so each is in that case's access
    report and counts towards the many-cases alert), written in one batch before the
    page answers. A page that shows no case writes none."""
    actor = actor_for(request.user)
    cases = sorted({case_id for case_id in case_ids if case_id is not None})
    if cases:
        record_many([Pending(actor=actor, action=AuditAction.ADMIN_CASE_DATA_VIEWED,
                             object_type=object_type, object_id=object_id or "",
                             case_id=case_id, reason=page) for case_id in cases])


class AuditedReadsAdmin(HistoryAdmin):
    """An administration page that shows case data (a case, who may see it) is a read
    like any other (SECURITY.md 7): its list, a record's page, its history and a past
    version each write an entry per case shown before they answer. No entry, no page: a
    failed write is the page's failure, so nothing is shown unrecorded."""

    audit_object_type = ""

    def audit_case_id(self, obj) -> int | None:
        """The case `obj` belongs to."""
        raise NotImplementedError

    def _record(self, request, response, *, page: str, object_id) -> None:
        if response.status_code != 200:
            return
        obj = self.get_object(request, unquote(object_id))
        record_case_reads(request, object_type=self.audit_object_type, object_id=object_id,
                          case_ids=[self.audit_case_id(obj)] if obj is not None else [],
                          page=page)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and response.status_code == 200:
            record_case_reads(request, object_type=self.audit_object_type, object_id="",
                              case_ids=[self.audit_case_id(obj) for obj in changelist.result_list],
                              page=f"list ({changelist.result_count} matching)")
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        self._record(request, response, page="record", object_id=object_id)
        return response

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        self._record(request, response, page="history", object_id=object_id)
        return response

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        response = super().history_form_view(request, object_id, version_id, extra_context)
        self._record(request, response, page=f"version {version_id}", object_id=object_id)
        return response
