"""Case access pages: the access list (lead, keyworkers, who may open the case and
why), transfer requests and decisions, break-glass, sealed-note readers, the family's
people (adding one, correcting their details, their specialist agencies), search and
the case record export."""

import csv
import re

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from casenotes import actions, selectors
from casenotes.forms import (
    BreakGlassForm,
    CaseForm,
    CloseCaseForm,
    KeyworkerForm,
    LeadForm,
    LegalBasisForm,
    PersonFilterForm,
    PersonForm,
    SearchForm,
    ShareForm,
    SpecialistAgencyForm,
    TransferDecisionForm,
    TransferRequestForm,
)
from casenotes.models import Case, CaseGrant, Person
from casenotes.permissions import Action, NotFound, policy
from casenotes.views.notes import _add_action_errors
from teams.models import Team
from teams.selectors import team_members
from workspace.forms import as_id, new_page_key, page_key


def _members_queryset(case: Case):
    ids = [m.user_id for m in team_members(case.allocated_team)]
    return get_user_model().objects.filter(pk__in=ids).order_by("first_name", "last_name")


def _access_page(request, access, *, lead_form=None, keyworker_form=None, status=200):
    case = access.case
    return render(request, "casenotes/case_access.html", {
        "access": access, "case": case, **selectors.access_list(access),
        "lead_form": lead_form or LeadForm(members=_members_queryset(case),
                                           initial={"lead": case.lead_practitioner_id}),
        "keyworker_form": keyworker_form or KeyworkerForm(
            candidates=selectors.keyworker_candidates(case)),
    }, status=status)


@login_required
def case_access(request, case_id):
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    return _access_page(request, access)


@login_required
@require_POST
def lead_allocate(request, case_id):
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    form = LeadForm(request.POST, members=_members_queryset(access.case))
    if form.is_valid():
        lead = form.cleaned_data["lead"]
        already = access.case.lead_practitioner_id == lead.pk
        try:
            actions.do_allocate_lead(acting_user=request.user, case=access.case, lead=lead)
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            if already:
                messages.info(request, f"{lead.get_full_name() or lead.get_username()} is "
                                       "already the lead practitioner. Nothing was changed.")
            else:
                messages.success(request, "Lead practitioner allocated.")
            return redirect("casenotes:case_access", case_id=access.case.pk)
    return _access_page(request, access, lead_form=form, status=400)


@login_required
@require_POST
def keyworker_add(request, case_id):
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    form = KeyworkerForm(request.POST, candidates=selectors.keyworker_candidates(access.case))
    if form.is_valid():
        try:
            grant = actions.do_add_keyworker(acting_user=request.user, case=access.case,
                                             user=form.cleaned_data["user"],
                                             until=form.cleaned_data["until"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, f"{grant.user.get_full_name()} added as a keyworker.")
            return redirect("casenotes:case_access", case_id=access.case.pk)
    return _access_page(request, access, keyworker_form=form, status=400)


def _end_grant(request, case_id, grant_id, kind: str, end, success, *, missing: str):
    """The case's manager ends one grant of `kind` on the case (`end`, an action), then
    back to the access list with what happened; a grant already ended is said so."""
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    grant = CaseGrant.objects.filter(pk=as_id(grant_id), case=access.case,
                                     kind=kind).select_related("user").first()
    if grant is None:
        raise NotFound(missing)
    try:
        end(acting_user=request.user, grant=grant)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
    else:
        messages.success(request, success(grant.user.get_full_name()))
    return redirect("casenotes:case_access", case_id=access.case.pk)


@login_required
@require_POST
def keyworker_remove(request, case_id, grant_id):
    return _end_grant(request, case_id, grant_id, CaseGrant.Kind.KEYWORKER,
                      actions.do_remove_keyworker,
                      lambda name: f"{name} removed as a keyworker. Their access ended now.",
                      missing="Keyworker")


@login_required
@require_POST
def break_glass_end(request, case_id, grant_id):
    """The case's manager ends someone's emergency access before it runs out."""
    return _end_grant(request, case_id, grant_id, CaseGrant.Kind.BREAK_GLASS,
                      actions.do_end_break_glass,
                      lambda name: f"{name}'s emergency access ended now.",
                      missing="Emergency access")


# --- transfers ----------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def transfer_request(request, case_id):
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    teams = Team.objects.filter(is_active=True).exclude(pk=access.case.allocated_team_id)
    if request.method == "POST":
        form = TransferRequestForm(request.POST, teams=Team.objects.all())
        if form.is_valid():
            data = form.cleaned_data
            try:
                actions.do_request_transfer(
                    acting_user=request.user, case=access.case, to_team=data["to_team"],
                    reason=data["reason"], handover_days=data["handover_days"])
            except ValidationError as error:
                _add_action_errors(form, error)
            else:
                messages.success(request, f"Transfer to {data['to_team'].name} requested. Its "
                                          "team manager will accept or reject it.")
                return redirect("casenotes:case_access", case_id=access.case.pk)
        form.fields["to_team"].queryset = teams
    else:
        form = TransferRequestForm(teams=teams)
    return render(request, "casenotes/transfer_request.html", {
        **selectors.case_form(access, "transfer request form"), "form": form,
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def case_manage(request, case_id):
    """The team manager's page for the case itself: its legal basis, and closing it."""
    access = policy.access_case(request.user, case_id, Action.MANAGE_CASE_ACCESS)
    case = access.case
    basis_form = LegalBasisForm(initial={"category": case.category})
    close_form = CloseCaseForm()
    intent = request.POST.get("intent")
    if intent == "legal_basis":
        basis_form = LegalBasisForm(request.POST)
        if basis_form.is_valid():
            try:
                actions.do_change_legal_basis(acting_user=request.user, case=case,
                                              category=basis_form.cleaned_data["category"],
                                              reason=basis_form.cleaned_data["reason"],
                                              based_on=request.POST.get("based_on"))
            except ValidationError as error:
                _add_action_errors(basis_form, error)
            else:
                messages.success(request, "Legal basis changed.")
                return redirect("casenotes:case_detail", case_id=case.pk)
    elif intent == "close":
        close_form = CloseCaseForm(request.POST)
        if close_form.is_valid():
            try:
                actions.do_close_case(acting_user=request.user, case=case)
            except ValidationError as error:
                _add_action_errors(close_form, error)
            else:
                messages.success(request, "Case closed.")
                return redirect("casenotes:case_detail", case_id=case.pk)
    elif request.method == "POST":
        basis_form = LegalBasisForm({"category": case.category})
        basis_form.is_valid()
        basis_form.add_error(None, "Choose what to change, then use its button.")
    refused = request.method == "POST"
    can_close = case.is_open and policy.can(request.user, Action.CLOSE_CASE, access)
    return render(request, "casenotes/case_manage.html", {
        **selectors.case_form(access, "case management form"),
        "basis_form": basis_form, "close_form": close_form, "can_close": can_close,
        "unfinished_drafts": selectors.unfinished_drafts(case) if can_close else [],
    }, status=400 if refused else 200)


@login_required
@require_POST
def transfer_withdraw(request, transfer_id):
    transfer = policy.access_transfer(request.user, transfer_id, Action.MANAGE_CASE_ACCESS)
    try:
        actions.do_withdraw_transfer(acting_user=request.user, transfer=transfer)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
    else:
        messages.success(request, "Transfer request withdrawn.")
    return redirect("casenotes:case_access", case_id=transfer.case_id)


@login_required
def transfer_list(request):
    return render(request, "casenotes/transfer_list.html", {
        **selectors.transfers_for(request.user), "nav": "transfers"})


def _basis_to_review(transfer) -> str:
    """A step down to early help leaves the case's legal basis as it was (a child in need
    or on a plan): the receiving manager is asked to review it, not told it changed."""
    case = transfer.case
    if transfer.to_team.kind == Team.Kind.LOCALITY and case.category != Case.Category.EARLY_HELP:
        return (f" Its legal basis is still {case.get_category_display().lower()}: review it "
                "under Manage the case.")
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def transfer_decide(request, transfer_id):
    transfer = policy.access_transfer(request.user, transfer_id, Action.DECIDE_TRANSFER)
    form = TransferDecisionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        accept = form.cleaned_data["decision"] == "accept"
        try:
            actions.do_decide_transfer(acting_user=request.user, transfer=transfer, accept=accept,
                                       reason=form.cleaned_data["decision_reason"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            if accept:
                messages.success(request, f"{transfer.case.reference} is now with "
                                          f"{transfer.to_team.name}. Allocate a lead practitioner."
                                          + _basis_to_review(transfer))
                return redirect("casenotes:case_access", case_id=transfer.case_id)
            messages.success(request, "Transfer request rejected.")
            return redirect("casenotes:transfer_list")
    return render(request, "casenotes/transfer_decide.html", {
        **selectors.transfer_page(request.user, transfer), "form": form, "nav": "transfers",
    }, status=400 if form.errors else 200)


# --- search and break-glass -----------------------------------------------------------------

@login_required
def search(request):
    form = SearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid():
        results = selectors.search(request.user, form.cleaned_data["q"])
    return render(request, "casenotes/search.html", {
        "form": form, "results": results, "nav": "search",
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request, case_id):
    case = Case.objects.filter(pk=as_id(case_id)).first()
    if case is None or not policy.can(request.user, Action.BREAK_GLASS, case):
        if case is not None and policy.case_access(request.user, case) is not None:
            return redirect("casenotes:case_detail", case_id=case.pk)
        policy.record_denied(request.user, "case", case_id, case.pk if case else None,
                             Action.BREAK_GLASS)
        raise NotFound("Case")
    form = BreakGlassForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_open_break_glass(acting_user=request.user, case=case,
                                        reason_code=form.cleaned_data["reason_code"],
                                        reason=form.cleaned_data["reason"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            return redirect("casenotes:case_detail", case_id=case.pk)
    # Only the reference is shown: the family's details are what the access is for.
    return render(request, "casenotes/break_glass.html", {
        **selectors.break_glass_form(request.user, case), "form": form,
    }, status=400 if form.errors else 200)


# --- notes and people ------------------------------------------------------------------------

@login_required
def note_history(request, case_id, note_id):
    access = policy.access_case(request.user, case_id)
    note = policy.access_note(access, note_id, Action.VIEW_NOTE_HISTORY)
    return render(request, "casenotes/note_history.html", {
        "access": access, "case": access.case, "note": note,
        "versions": selectors.note_history(access, note),
    })


@login_required
@require_http_methods(["GET", "POST"])
def note_readers(request, case_id, note_id):
    access = policy.access_case(request.user, case_id)
    note = policy.access_note(access, note_id, Action.SHARE_NOTE)
    readers = selectors.note_form(access, note, page="who may read this sealed note").readers
    form = ShareForm(request.POST if request.method == "POST" else None, readers_queryset=readers,
                     initial={"readers": list(note.readers.all())})
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_share_sealed_note(acting_user=request.user, note=note,
                                         readers=form.cleaned_data["readers"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, "Named readers saved.")
            return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
    return render(request, "casenotes/note_readers.html", {
        "access": access, "case": access.case, "note": note, "form": form,
    }, status=400 if form.errors else 200)


def _case_person(access, person_id) -> Person:
    person = Person.objects.filter(pk=as_id(person_id), case=access.case).first()
    if person is None:
        raise NotFound("Person")
    return person


@login_required
@require_http_methods(["GET", "POST"])
def person_add(request, case_id):
    """Add a child or adult to the family (anyone who may add to the case)."""
    access = policy.access_case(request.user, case_id, Action.ADD_PERSON)
    form = PersonForm(request.POST if request.method == "POST" else None)
    key = page_key(request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            person = actions.do_add_person(
                acting_user=request.user, case=access.case, full_name=data["full_name"],
                role_in_family=data["role_in_family"], date_of_birth=data["date_of_birth"],
                client_ref=key)
        except actions.AlreadyAdded as already:
            messages.info(request, f"{already.added.full_name} was already added to the family. "
                                   "They have not been added again.")
            return redirect("casenotes:case_detail", case_id=access.case.pk)
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, f"{person.full_name} added to the family.")
            if request.POST.get("then") == "another":
                return redirect("casenotes:person_add", case_id=access.case.pk)
            return redirect("casenotes:case_detail", case_id=access.case.pk)
    return render(request, "casenotes/person_form.html", {
        **selectors.case_form(access, "add person form"), "form": form,
        "page_key": key or new_page_key(),
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def person_edit(request, case_id, person_id):
    """Correct a person's name, role or date of birth. An edit of details someone else
    has changed since the page was shown is refused, and both versions are shown."""
    access = policy.access_case(request.user, case_id, Action.ADD_PERSON)
    person = _case_person(access, person_id)
    if request.method == "POST":
        form = PersonForm(request.POST, editing=True)
    else:
        form = PersonForm(initial=PersonForm.initial_for(person), editing=True)
    saved_now = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            person = actions.do_update_person(
                acting_user=request.user, person=person, based_on=data["based_on"],
                full_name=data["full_name"], role_in_family=data["role_in_family"],
                date_of_birth=data["date_of_birth"])
        except actions.PersonChanged as changed:
            saved_now = person = changed.current
            form.add_error(None, f"{changed} Compare your changes with the details saved now, "
                                 "then save again.")
            # What is typed stays; the next save is based on the version now shown.
            form.data = form.data.copy()
            form.data["based_on"] = str(saved_now.details_version)
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            if person.details_version == data["based_on"]:
                messages.info(request, f"Nothing was changed in the details of {person.full_name}.")
            else:
                messages.success(request, f"Details of {person.full_name} saved.")
            return redirect("casenotes:case_detail", case_id=access.case.pk)
    return render(request, "casenotes/person_form.html", {
        **selectors.case_form(access, "person details form", person=person), "form": form,
        "saved_now": saved_now,
    }, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def person_specialist(request, case_id, person_id):
    access = policy.access_case(request.user, case_id, Action.ADD_PERSON)
    person = _case_person(access, person_id)
    if person.is_child:
        raise NotFound("Person")
    form = SpecialistAgencyForm(request.POST if request.method == "POST" else None,
                                initial={"specialist_agency": person.specialist_agency_id})
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_specialist_agency(acting_user=request.user, person=person,
                                             agency=form.cleaned_data["specialist_agency"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, f"Specialist agency for {person.full_name} saved.")
            return redirect("casenotes:case_detail", case_id=access.case.pk)
    return render(request, "casenotes/person_specialist.html", {
        **selectors.case_form(access, "specialist agency form", person=person), "form": form,
    }, status=400 if form.errors else 200)


# --- export --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """A spreadsheet must not run what a note says: formula-like text is neutralised."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(filename: str, columns: dict[str, str], rows: list[dict]) -> HttpResponse:
    """A CSV download: `columns` maps each row key to its heading. The file name keeps
    only letters, digits, '.', '_' and '-' (a reference typed elsewhere cannot break the
    header)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "-", filename)
    response["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    writer = csv.writer(response)
    writer.writerow(columns.values())
    for row in rows:
        writer.writerow([_cell(row[key]) for key in columns])
    return response


@login_required
def case_export(request, case_id):
    access = policy.access_case(request.user, case_id, Action.EXPORT_CASE)
    return _csv(f"{access.case.reference}-record.csv", {
        "occurred_at": "When", "type": "Type", "author": "Author", "agency": "Agency",
        "state": "State", "body": "Note", "significant": "Significant event", "about": "About",
        "addenda": "Addenda"},
        selectors.case_export(access))


@login_required
def chronology_export(request, case_id):
    access = policy.access_case(request.user, case_id, Action.EXPORT_CASE)
    filters = PersonFilterForm(request.GET or None, case=access.case)
    if filters.is_bound and not filters.is_valid():
        # The page says what is wrong (and answers 400); nothing is exported.
        return redirect(reverse("casenotes:chronology", args=[access.case.pk]) + "?"
                        + request.GET.urlencode())
    person = filters.cleaned_data["person"] if filters.is_bound else None
    return _csv(f"{access.case.reference}-chronology.csv", {
        "when": "Date", "what": "What happened", "about": "About", "by": "Recorded by",
        "agency": "Agency", "note": "Note", "addenda": "Addenda"},
        selectors.chronology_export(access, person=person))


# --- a new case ----------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def case_create(request, team_id):
    team = policy.access_team(request.user, team_id, Action.CREATE_CASE)
    ids = [m.user_id for m in team_members(team)]
    members = get_user_model().objects.filter(pk__in=ids).order_by("first_name", "last_name")
    form = CaseForm(request.POST if request.method == "POST" else None, members=members)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            case = actions.do_create_case(
                acting_user=request.user, reference=data["reference"],
                family_name=data["family_name"], category=data["category"], team=team,
                lead_practitioner=data["lead_practitioner"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, f"Case {case.reference} opened. Add the family next.")
            return redirect("casenotes:person_add", case_id=case.pk)
    return render(request, "casenotes/case_form.html", {"team": team, "form": form},
                  status=400 if form.errors else 200)


@login_required
def case_history(request, case_id):
    access = policy.access_case(request.user, case_id)
    return render(request, "casenotes/case_history.html", {
        "access": access, "case": access.case, **selectors.case_history(access)})
