"""Pages for cases and notes. Views parse input, ask the policy (through access_*),
call selectors to read and actions to write, and render."""

import datetime
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, connection
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from audit.models import AuditAction, AuditEvent
from casenotes import actions, events, selectors
from casenotes.forms import AddendumForm, DraftEditForm, NoteFilterForm, NoteForm, PersonFilterForm
from casenotes.models import CaseNote
from casenotes.permissions import Action, policy
from discussions import selectors as discussion_selectors
from teams.selectors import active_memberships, is_administrator, is_ig_officer
from workspace.forms import new_page_key, page_key

SENSITIVITY_HINTS = {
    "standard": "Everyone working on this case.",
    "agency_restricted": "Only your agency and the team manager. Others see that a note "
                         "exists, with your agency and its date, and nothing else.",
    "sealed": "Only you and the people you name below, not even the team manager. Others "
              "see nothing of it.",
}


def _saved(request, note) -> None:
    """Say what was saved; a sealed note no one else may read says so, and how to share."""
    messages.success(request, "Note finalised." if note.is_final else "Draft saved.")
    if (note.is_final and note.sensitivity == CaseNote.Sensitivity.SEALED
            and not note.readers.exists()):
        messages.info(request, "Only you can read this sealed note. To let others read it, "
                               "use \"Change who may read it\" below.")

def _sensitivity_hints(access, members) -> dict:
    """The hints, with who else in the case's team (`members`) is in the writer's
    agency: they read agency-restricted notes too (a victim's worker learns that a
    perpetrator's worker of the same service would)."""
    hints = dict(SENSITIVITY_HINTS)
    membership = access.membership
    if membership is None:
        return hints
    same = [m for m in members
            if m.agency_id == membership.agency_id and m.user_id != access.user.pk]
    if same:
        names = ", ".join(f"{m.user.get_full_name() or m.user.get_username()} "
                          f"({m.get_role_display().lower()})" for m in same)
        hints["agency_restricted"] += f" In this case's team, your agency also includes {names}."
    return hints


# Action errors are keyed by model field; the form shows a date error on its (first) date box.
_FORM_FIELD = {"occurred_at": "occurred_day", "date_of_birth": "birth_day",
               "scheduled_for": "date", "category_reason": "reason", "review_on": "review_day"}

logger = logging.getLogger(__name__)

FAULT_MESSAGE = ("The note could not be saved because of a fault on our side. Nothing was "
                 "saved, and your text is still here: try again in a moment.")
#: What counts towards the per-person limit on saving notes from pages: new notes,
#: finalising and addenda (autosaves of a draft do not).
_COUNTED = (AuditAction.NOTE_CREATED, AuditAction.NOTE_FINALISED, AuditAction.ADDENDUM_ADDED)


def _over_save_limit(user) -> bool:
    """Has `user` saved NOTE_SAVES_PER_MINUTE notes in the last minute? Counted from the
    access log (shared by every server process, and indexed by person and time)."""
    limit = settings.NOTE_SAVES_PER_MINUTE
    if not limit:
        return False
    since = timezone.now() - datetime.timedelta(minutes=1)
    saved = (AuditEvent.objects.filter(actor_id=user.pk, action__in=_COUNTED, occurred_at__gte=since)
             .values("object_type", "object_id").distinct().count())  # a note once, however saved
    return saved >= limit


def _save_refused(request, form) -> int | None:
    """Refuse a save over the limit before it starts: the reason on the form, the text
    kept. Returns the status to answer with, or None to go ahead."""
    if _over_save_limit(request.user):
        form.add_error(None, f"You have saved {settings.NOTE_SAVES_PER_MINUTE} notes in the "
                             "last minute, the most allowed. Wait a minute, then save again: "
                             "your text is still here.")
        return 429
    return None


def _fault(form, message: str = FAULT_MESSAGE) -> int:
    """A database fault during a save: the action's transaction rolled back the change,
    its history and its audit entry together; say so and keep the text."""
    logger.exception("a save failed")
    if not connection.is_usable():
        connection.close()  # the connection died with the save: the page gets a new one
    form.add_error(None, message)
    return 503


def _add_action_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            target = _FORM_FIELD.get(field, field)
            target = target if target in form.fields else None
            for message in errors:
                form.add_error(None if field == NON_FIELD_ERRORS else target, message)
    else:
        for message in error.messages:
            form.add_error(None, message)


@login_required
def caseload(request):
    """The home page: a practitioner's caseload; for those who work no cases, the start
    of their own work (information governance, administration)."""
    if not any(m.works_cases for m in active_memberships(request.user)):
        if is_ig_officer(request.user):
            return render(request, "casenotes/home_governance.html", {
                "nav": "ig", "awaiting_review": selectors.emergency_access_awaiting_review()})
        if is_administrator(request.user):
            return render(request, "casenotes/home_administration.html")
    cases = selectors.caseload(request.user)
    discussions = discussion_selectors.coming_up(request.user)
    return render(request, "casenotes/caseload.html", {
        "cases": cases, "discussions": discussions, "drafts": selectors.my_drafts(request.user, cases),
        "running": [d for d in discussions if d.status == d.Status.IN_PROGRESS], "nav": "caseload"})


@login_required
def case_detail(request, case_id):
    access = policy.access_case(request.user, case_id)
    filters = NoteFilterForm(request.GET or None, case=access.case)
    note_type, person, words = "", None, ""
    if filters.is_bound and filters.is_valid():
        note_type = filters.cleaned_data["note_type"]
        person = filters.cleaned_data["person"]
        words = filters.cleaned_data["words"]
    filtered = bool(note_type or person or words)
    read_from = timezone.now()
    page = selectors.case_page(access, note_type=note_type, person=person, words=words,
                               page=request.GET.get("page", 1))
    if page["notes_page"].number == 1 and not filtered:
        # The newest notes, unfiltered: the caseload counts new ones from here.
        actions.do_mark_case_seen(acting_user=request.user, case=access.case, at=read_from)
    plan = selectors.plan_summary(access.case)
    return render(request, "casenotes/case_detail.html", {
        "access": access, "case": access.case, "filters": filters,
        "plan": plan, "filed": discussion_selectors.latest_record(access, plan),
        "filtered": filtered,
        "can_add_note": access.case.is_open and policy.can(request.user, Action.ADD_NOTE, access),
        "can_change_family": access.case.is_open and policy.can(request.user, Action.ADD_PERSON,
                                                                 access),
        "can_manage_access": policy.can(request.user, Action.MANAGE_CASE_ACCESS, access),
        "can_export": policy.can(request.user, Action.EXPORT_CASE, access),
        "agreed_actions": discussion_selectors.case_actions(access),
        "can_edit_plan": access.case.is_open and policy.can(request.user, Action.EDIT_PLAN, access),
        "page_query": _without_page(request.GET),
        **page,
    })


def _without_page(query) -> str:
    """A page's query string without its page number, for its pagination links."""
    query = query.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def chronology(request, case_id):
    access = policy.access_case(request.user, case_id)
    filters = PersonFilterForm(request.GET or None, case=access.case)
    person = filters.cleaned_data["person"] if filters.is_bound and filters.is_valid() else None
    return render(request, "casenotes/chronology.html", {
        "access": access, "case": access.case, "filters": filters, "person": person,
        "can_export": policy.can(request.user, Action.EXPORT_CASE, access),
        **selectors.chronology(access, person=person),
    }, status=400 if filters.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def note_create(request, case_id):
    access = policy.access_case(request.user, case_id, Action.ADD_NOTE)
    if request.method == "GET" and not access.case.is_open:
        messages.info(request, "This case is closed. Notes cannot be added to a closed case.")
        return redirect("casenotes:case_detail", case_id=access.case.pk)
    # The page's key for the note it adds (made when the page is shown, kept when it
    # is shown again with errors): a form sent twice, or after the page's autosave made
    # the note, finds that note instead of adding a second one.
    client_ref = page_key(request)
    if client_ref and (sent := _note_of_page(access, request.user, client_ref)):
        return _sent_again(request, access, sent)
    form_data = selectors.note_form(access)
    readers = form_data.readers
    status = None
    if request.method == "POST":
        form = NoteForm(request.POST, case=access.case, readers_queryset=readers)
        if form.is_valid() and not (status := _save_refused(request, form)):
            data = form.cleaned_data
            try:
                note = actions.do_create_note(
                    acting_user=request.user, case=access.case, note_type=data["note_type"],
                    occurred_at=data["occurred_at"], body=data["body"],
                    sensitivity=data["sensitivity"], is_significant=data["is_significant"],
                    people=data["people"], readers=data["readers"],
                    restricted_person=data["restricted_person"],
                    finalise=request.POST.get("intent") == "finalise", client_ref=client_ref,
                )
            except ValidationError as error:
                _add_action_errors(form, error)
            except DatabaseError:
                # Sent twice at once (a retry while the first was being saved): the key
                # is taken, so the first one was saved.
                if client_ref and (sent := _note_of_page(access, request.user, client_ref)):
                    return _sent_again(request, access, sent)
                status = _fault(form)
            else:
                _saved(request, note)
                return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
    else:
        form = NoteForm(initial=NoteForm.initial_for(), case=access.case, readers_queryset=readers)
    return render(request, "casenotes/note_form.html", {
        "access": access, "case": access.case, "form": form, "title": "Add a note",
        "sensitivity_hints": _sensitivity_hints(access, form_data.members),
        "last_seq": events.last_seq(access.case.pk), "client_ref": client_ref or new_page_key(),
    }, status=status or (400 if form.errors else 200))


def _note_of_page(access, user, client_ref: str) -> CaseNote | None:
    return CaseNote.objects.filter(case=access.case, author=user, client_ref=client_ref).first()


def _sent_again(request, access, note: CaseNote):
    """The add-note form sent for a note its page already made: a draft (made by the
    page's autosave) is updated with the form, as the version that save made; a note
    already finalised (the form sent twice) is shown, not added again."""
    if note.is_final:
        messages.info(request, "This note was already saved. It has not been added again.")
        return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
    request.POST = request.POST.copy()
    request.POST["version"] = "1"
    return note_edit(request, case_id=access.case.pk, note_id=note.pk)


@login_required
def note_detail(request, case_id, note_id):
    access = policy.access_case(request.user, case_id)
    note = policy.access_note(access, note_id)
    page = selectors.note_page(access, note)
    return render(request, "casenotes/note_detail.html", {
        "access": access, "case": access.case, "note": note,
        "can_edit": policy.can_on_note(access, Action.EDIT_NOTE, note),
        "can_amend": access.case.is_open and policy.can_on_note(access, Action.AMEND_NOTE, note),
        "can_share": access.case.is_open and policy.can_on_note(access, Action.SHARE_NOTE, note),
        "addendum_form": AddendumForm(), "page_key": new_page_key(), **page,
    })


@login_required
@require_http_methods(["GET", "POST"])
def note_edit(request, case_id, note_id):
    access = policy.access_case(request.user, case_id)
    note = policy.access_note(access, note_id)
    if request.method == "GET" and not policy.can_on_note(access, Action.EDIT_NOTE, note):
        if note.is_final:
            messages.info(request, "This note has been finalised and can no longer be changed. "
                                   "Add an addendum to correct or add to it.")
            return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
        policy.access_note(access, note_id, Action.EDIT_NOTE)  # records the denial, raises 404
    if request.method == "GET" and not access.case.is_open:
        # Not an editor that could never save: the draft as it stands, and why.
        messages.info(request, "This case is closed. Drafts on it can no longer be changed "
                               "or finalised, and are not part of the record.")
        return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
    form_data = selectors.note_form(access, note)
    readers = form_data.readers
    conflict = status = None
    if request.method == "POST":
        form = DraftEditForm(request.POST, case=access.case, readers_queryset=readers)
        finalising = request.POST.get("intent") == "finalise"
        if form.is_valid() and not (finalising and (status := _save_refused(request, form))):
            data = form.cleaned_data
            try:
                note = actions.do_update_draft(
                    acting_user=request.user, note=note, expected_version=data["version"],
                    note_type=data["note_type"], occurred_at=data["occurred_at"],
                    body=data["body"], sensitivity=data["sensitivity"],
                    is_significant=data["is_significant"], people=data["people"],
                    readers=data["readers"], restricted_person=data["restricted_person"],
                    finalise=request.POST.get("intent") == "finalise",
                )
            except actions.StaleVersion as stale:
                # Keep what they typed; show what is saved; let them choose.
                conflict = stale.current
                data = request.POST.copy()  # every ticked person and reader, not the last
                data["version"] = conflict.version
                form = DraftEditForm(data, case=access.case, readers_queryset=readers)
                form.is_valid()
                form.add_error(None, "This draft was changed elsewhere since you opened it. "
                               "Your text is below, and the saved version beside it. Nothing "
                               "has been lost: save again to keep your text.")
            except ValidationError as error:
                _add_action_errors(form, error)
            except DatabaseError:
                status = _fault(form)
            else:
                _saved(request, note)
                return redirect("casenotes:note_detail", case_id=access.case.pk, note_id=note.pk)
    else:
        form = DraftEditForm(initial={**NoteForm.initial_for(note), "version": note.version},
                             case=access.case, readers_queryset=readers)
    return render(request, "casenotes/note_form.html", {
        "access": access, "case": access.case, "form": form, "note": note,
        "conflict": conflict, "title": "Edit draft note",
        "sensitivity_hints": _sensitivity_hints(access, form_data.members),
        "last_seq": events.last_seq(access.case.pk),
    }, status=status or (409 if conflict else 400 if form.errors else 200))


@login_required
@require_POST
def addendum_create(request, case_id, note_id):
    access = policy.access_case(request.user, case_id)
    note = policy.access_note(access, note_id, Action.AMEND_NOTE)
    form = AddendumForm(request.POST)
    status = None
    key = page_key(request)
    if form.is_valid() and not (status := _save_refused(request, form)):
        try:
            actions.do_add_addendum(acting_user=request.user, note=note,
                                    body=form.cleaned_data["body"], client_ref=key)
        except actions.AlreadyAdded:
            messages.info(request, "This addendum was already added. It has not been added again.")
            return redirect(reverse("casenotes:note_detail", args=[access.case.pk, note.pk]))
        except ValidationError as error:
            _add_action_errors(form, error)
        except DatabaseError:
            status = _fault(form)
        else:
            messages.success(request, "Addendum added.")
            return redirect(reverse("casenotes:note_detail", args=[access.case.pk, note.pk]))
    page = selectors.note_page(access, note)
    return render(request, "casenotes/note_detail.html", {
        "access": access, "case": access.case, "note": note, "can_edit": False,
        "can_amend": True, "addendum_form": form, "page_key": key or new_page_key(), **page,
    }, status=status or 400)

