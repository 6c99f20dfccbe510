"""Information-governance pages (IG officers only). Every page reads through
audit/selectors.py, which audits the read; every other role gets the not-found page
(and a denied entry)."""

import csv
import datetime
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from audit import sar, selectors
from audit.forms import LogSearchForm, ReviewForm, SarForm, SarSearchForm
from casenotes import actions
from casenotes import selectors as case_selectors
from casenotes.actions.access import review_stamp
from casenotes.models import Case, CaseGrant, Person
from casenotes.permissions import Action, NotFound, policy
from casenotes.views.access import _cell
from casenotes.views.notes import _add_action_errors
from workspace.forms import as_id


def ig_only(view):
    @wraps(view)
    @login_required
    def checked(request, *args, **kwargs):
        if not policy.can(request.user, Action.REVIEW_BREAK_GLASS):
            policy.record_denied(request.user, "audit", request.path[:64], None, "read_audit")
            raise NotFound()
        return view(request, *args, **kwargs)
    return checked


_CSV_HEADER = ["When (UTC)", "User", "Agency", "Role", "Client IP", "User agent", "Request id",
               "Action", "Outcome", "Object type", "Object id", "Case id", "Reason",
               "Break-glass grant", "Entry hash"]


@ig_only
def log_search(request):
    form = LogSearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid():
        spec = form.spec()
        if request.GET.get("format") == "csv":
            rows = selectors.export_log(request.user, spec)
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="access-log-{timezone.now():%Y%m%d-%H%M}.csv"')
            writer = csv.writer(response)
            writer.writerow(_CSV_HEADER)
            for e in rows:
                writer.writerow([_cell(v) for v in (
                    e.occurred_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    e.actor_label, e.agency_label, e.role_label, e.client_ip, e.user_agent,
                    e.request_id, e.get_action_display(), e.outcome, e.object_type, e.object_id,
                    e.case_id, e.reason, e.break_glass_id, e.entry_hash)])
            return response
        results = selectors.search_log(request.user, spec, page=form.cleaned_data.get("page") or 1)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/log_search.html", {
        "form": form, "results": results, "query": query.urlencode(), "nav": "ig",
    }, status=400 if form.errors else 200)


@ig_only
def break_glass_queue(request):
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    return render(request, "audit/break_glass_queue.html", {
        **case_selectors.break_glass_queue(request.user, page=page), "nav": "ig"})


@ig_only
@require_http_methods(["GET", "POST"])
def break_glass_review(request, grant_id):
    grant = (CaseGrant.objects.select_related("user", "case", "reviewed_by", "ended_by")
             .filter(pk=as_id(grant_id), kind=CaseGrant.Kind.BREAK_GLASS).first())
    if grant is None:
        raise NotFound("Emergency access")
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_review_break_glass(acting_user=request.user, grant=grant,
                                          review=form.cleaned_data["review"],
                                          note=form.cleaned_data["note"],
                                          end_now=form.cleaned_data["end_now"],
                                          seen_review=request.POST.get("seen_review"))
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, "Review recorded. The emergency access has ended."
                             if form.cleaned_data["end_now"] else "Review recorded.")
            return redirect("audit:break_glass_queue")
    under = selectors.search_log(request.user, selectors.LogFilter(break_glass_id=grant.pk))
    return render(request, "audit/break_glass_review.html", {
        "grant": grant, "entries": under["entries"], "form": form, "nav": "ig",
        "seen_review": review_stamp(grant),
    }, status=400 if form.errors else 200)


@ig_only
def case_report(request, case_id):
    case = Case.objects.filter(pk=as_id(case_id)).first()
    if case is None:
        raise NotFound("Case")
    person = None
    if request.GET.get("person"):
        person = Person.objects.filter(pk=as_id(request.GET["person"]), case=case).first()
    return render(request, "audit/case_report.html", {
        **selectors.case_report(request.user, case, person=person), "nav": "ig"})


@ig_only
def user_report(request, user_id):
    subject = get_user_model().objects.filter(pk=as_id(user_id)).first()
    if subject is None:
        raise NotFound("User")
    return render(request, "audit/user_report.html", {
        **selectors.user_report(request.user, subject), "nav": "ig"})


@ig_only
def alerts(request):
    return render(request, "audit/alerts.html", {**selectors.alerts(request.user), "nav": "ig"})


@ig_only
@require_http_methods(["GET", "POST"])
def subject_access(request):
    """Find the person (name, date of birth and reference only), then produce the
    request: an explicit POST with its reference, audited."""
    form = SarForm(request.POST if request.method == "POST" else None)
    search = SarSearchForm(request.GET or None, auto_id="sar-%s")
    query = search.cleaned_data["q"] if search.is_bound and search.is_valid() else ""
    people = selectors.sar_candidates(request.user, query)
    if request.method == "POST" and form.is_valid():
        person = Person.objects.select_related("case__allocated_team").filter(
            pk=form.cleaned_data["person"]).first()
        if person is None:
            form.add_error("person", "Choose the person from the search results.")
        else:
            data = sar.subject_access(request.user, person, reference=form.cleaned_data["reference"])
            if form.cleaned_data["format"] == "json":
                response = JsonResponse(sar.as_json(data), json_dumps_params={"indent": 2})
                response["Content-Disposition"] = (
                    f'attachment; filename="sar-{form.cleaned_data["reference"]}.json"')
                return response
            return render(request, "audit/sar_report.html", {**data, "nav": "ig"})
    return render(request, "audit/sar_find.html", {
        "form": form, "search": search, "query": query, "people": people,
        "searched": bool(query), "nav": "ig",
    }, status=400 if form.errors or search.errors else 200)
