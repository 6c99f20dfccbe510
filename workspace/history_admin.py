"""The administration site's history pages, for every model that keeps history."""

from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    """simple-history's admin, with a version address that is not a version number
    answered 404 (simple-history's own view fails with a server error on it; a relative
    link on a version's page, such as the password button's, leads to one)."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not str(version_id).isdigit():
            raise Http404("No such version.")
        return super().history_form_view(request, object_id, version_id, extra_context)
