"""Pages of group case discussions: schedule, the room (agenda, record, actions,
attendance; manager's controls), sign-off, and each person's actions list.

Views parse and call the actions; every refusal of bad input re-shows the page with
a message and what was typed."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from casenotes.permissions import Action, NotFound, policy
from casenotes.views.notes import _add_action_errors
from discussions import actions, selectors
from discussions.forms import ActionForm, CompleteForm, ScheduleForm, SectionForm
from discussions.models import AgendaItem, AgreedAction, Discussion, KeptText, Section
from workspace.forms import as_id

SAVED_MESSAGES = {
    "saved": "Saved.",
    "unchanged": "No changes to save.",
    "merged": "Saved. Someone else changed this section meanwhile: both changes are in it.",
    "kept": "Someone else changed the same words meanwhile. Your text is kept beside the "
            "section: add it or dismiss it.",
}


def _members(team):
    from django.contrib.auth import get_user_model

    ids = [u.pk for u in selectors.owner_candidates(team)]
    return get_user_model().objects.filter(pk__in=ids).order_by("first_name", "last_name")


@login_required
@require_http_methods(["GET", "POST"])
def schedule(request, team_id):
    team = policy.access_team(request.user, team_id, Action.SCHEDULE_DISCUSSION)
    cases = selectors.agenda_cases(request.user)
    members = _members(team)
    if request.method == "POST":
        form = ScheduleForm(request.POST, cases=cases, members=members)
        if form.is_valid():
            try:
                discussion = actions.do_schedule_discussion(
                    acting_user=request.user, team=team, title=form.cleaned_data["title"],
                    scheduled_for=form.cleaned_data.get("scheduled_for"),
                    cases=form.ordered_cases(), invitees=list(form.cleaned_data["invitees"]))
            except ValidationError as error:
                _add_action_errors(form, error)
            else:
                messages.success(request, "Discussion scheduled. Invitees see it on the team page.")
                return redirect("discussions:room", discussion_id=discussion.pk)
    else:
        now = timezone.localtime()
        form = ScheduleForm(cases=cases, members=members, initial={
            "date": now.strftime("%d/%m/%Y"), "time": "10:00", "invitees": list(members),
            "cases": [c.pk for c in cases if c.allocated_team_id == team.pk]})
    return render(request, "discussions/schedule.html", {
        **selectors.schedule_form(request.user, team, cases),
        "form": form}, status=400 if form.errors else 200)


def _room(request, discussion: Discussion, *, status=200, errors=None, action_form=None,
          action_item=None, section_error=None):
    context = selectors.room(request.user, discussion)
    owners = context["owner_candidates"]
    for view in context["items"]:
        bound = action_form if action_item == view.item.pk else None
        view.action_form = bound or ActionForm(owners=owners, prefix=f"item{view.item.pk}")
        for section in view.sections:
            section.posted_text, section.errors = None, []
            if section_error and section_error[0] == section.pk:
                section.posted_text, section.errors = section_error[1], section_error[2]
    context.update(errors=errors or [], has_errors=bool(errors or section_error or (
        action_form is not None and action_form.errors)))
    return render(request, "discussions/room.html", context, status=status)


@login_required
def room(request, discussion_id):
    discussion = policy.access_discussion(request.user, discussion_id)
    return _room(request, discussion)


def _after(request, discussion: Discussion, anchor: str = ""):
    response = redirect("discussions:room", discussion_id=discussion.pk)
    response["Location"] += f"#{anchor}" if anchor else ""
    return response


def _run(request, discussion_id, do, success: str, *, discussion=None, **kwargs):
    """Run one of the manager's actions; `discussion` when the view has already asked
    the policy for it (no second check and its queries)."""
    if discussion is None:
        discussion = policy.access_discussion(request.user, discussion_id, Action.RUN_DISCUSSION)
    try:
        do(acting_user=request.user, discussion=discussion, **kwargs)
    except ValidationError as error:
        return _room(request, discussion, status=400, errors=error.messages)
    messages.success(request, success)
    return _after(request, discussion)


@login_required
@require_POST
def start(request, discussion_id):
    return _run(request, discussion_id, actions.do_start_discussion, "Discussion started.")


@login_required
@require_POST
def cancel(request, discussion_id):
    """Cancelling is final and for everyone: the manager confirms it with a tick."""
    discussion = policy.access_discussion(request.user, discussion_id, Action.RUN_DISCUSSION)
    if request.POST.get("confirm") != "on":
        return _room(request, discussion, status=400, errors=[
            "Tick the box to confirm that the discussion is cancelled for everyone."])
    return _run(request, discussion_id, actions.do_cancel_discussion, "Discussion cancelled.",
                discussion=discussion)


@login_required
@require_POST
def sign_off(request, discussion_id):
    return _run(request, discussion_id, actions.do_sign_off,
                "Signed off. The record is filed in each case and the actions are on their "
                "owners' lists.")


def _item(discussion: Discussion, item_id) -> AgendaItem:
    item = discussion.items.select_related("case").filter(pk=as_id(item_id)).first()
    if item is None:
        raise NotFound("Agenda item")
    return item


@login_required
@require_POST
def move(request, discussion_id):
    discussion = policy.access_discussion(request.user, discussion_id, Action.RUN_DISCUSSION)
    item = _item(discussion, request.POST.get("item"))
    return _run(request, discussion_id, actions.do_move_to_item,
                f"Now discussing {item.case.reference}.", discussion=discussion, item=item)


@login_required
@require_POST
def agenda(request, discussion_id):
    """Change the agenda before the discussion starts: add a case, remove or move an item."""
    discussion = policy.access_discussion(request.user, discussion_id, Action.RUN_DISCUSSION)
    operation = request.POST.get("operation")
    try:
        if operation == "add":
            case = policy.visible_cases(request.user).filter(pk=as_id(request.POST.get("case"))).first()
            if case is None:
                raise ValidationError("Choose a case to add.")
            actions.do_add_agenda_case(acting_user=request.user, discussion=discussion, case=case)
        elif operation in ("up", "down", "remove"):
            item = _item(discussion, request.POST.get("item"))
            if operation == "remove":
                actions.do_remove_agenda_item(acting_user=request.user, item=item)
            else:
                at = request.POST.get("position")
                actions.do_move_agenda_item(acting_user=request.user, item=item,
                                            up=operation == "up", at=None if at is None else as_id(at))
        else:
            raise ValidationError("Choose what to change.")
    except ValidationError as error:
        return _room(request, discussion, status=400, errors=error.messages)
    messages.success(request, "Agenda updated.")
    return _after(request, discussion, "agenda")


@login_required
@require_http_methods(["GET"])
def agenda_add(request, discussion_id):
    """The manager's list of cases to add to a scheduled discussion's agenda (the form
    posts to `agenda`, operation "add")."""
    discussion = policy.access_discussion(request.user, discussion_id, Action.RUN_DISCUSSION)
    scheduled = discussion.status == Discussion.Status.SCHEDULED
    return render(request, "discussions/agenda_add.html", {
        "discussion": discussion, "scheduled": scheduled,
        "cases": selectors.agenda_candidates(request.user, discussion) if scheduled else [],
    })


def _editable(request, discussion_id):
    return policy.access_discussion(request.user, discussion_id, Action.JOIN_DISCUSSION)


@login_required
@require_POST
def section_save(request, discussion_id, section_id):
    discussion = _editable(request, discussion_id)
    section = Section.objects.select_related("item__case", "item__discussion").filter(
        pk=as_id(section_id), item__discussion=discussion).first()
    if section is None:
        raise NotFound("Section")
    form = SectionForm(request.POST)
    text = request.POST.get("text", "")
    if not form.is_valid():
        errors = [m for ms in form.errors.values() for m in ms]
        return _room(request, discussion, status=400, section_error=(section.pk, text, errors))
    try:
        result = actions.do_save_section(acting_user=request.user, section=section,
                                         text=form.cleaned_data["text"],
                                         version=form.cleaned_data["version"])
    except ValidationError as error:
        return _room(request, discussion, status=400, section_error=(section.pk, text, error.messages))
    messages.success(request, SAVED_MESSAGES[result.outcome])
    return _after(request, discussion, f"section-{section.pk}")


@login_required
@require_POST
def kept_resolve(request, discussion_id, kept_id):
    discussion = _editable(request, discussion_id)
    kept = KeptText.objects.filter(pk=as_id(kept_id), section__item__discussion=discussion).first()
    if kept is None:
        raise NotFound("Kept text")
    try:
        actions.do_resolve_kept_text(acting_user=request.user, kept=kept,
                                     add=request.POST.get("resolution") == "add")
    except ValidationError as error:
        return _room(request, discussion, status=400, errors=error.messages)
    messages.success(request, "Kept text added to the section." if request.POST.get("resolution")
                     == "add" else "Kept text dismissed. It remains in the record's history.")
    return _after(request, discussion, f"section-{kept.section_id}")


@login_required
@require_POST
def action_add(request, discussion_id, item_id):
    discussion = _editable(request, discussion_id)
    item = _item(discussion, item_id)
    form = ActionForm(request.POST, owners=selectors.owner_candidates(discussion.team),
                      prefix=f"item{item.pk}")
    if form.is_valid():
        try:
            actions.do_add_action(acting_user=request.user, item=item,
                                  description=form.cleaned_data["description"],
                                  owner=form.cleaned_data["owner"], due_on=form.cleaned_data["due_on"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, "Action added.")
            return _after(request, discussion, f"actions-{item.pk}")
    return _room(request, discussion, status=400, action_form=form, action_item=item.pk)


@login_required
@require_POST
def action_remove(request, discussion_id, action_id):
    discussion = _editable(request, discussion_id)
    agreed = AgreedAction.objects.filter(pk=as_id(action_id), item__discussion=discussion).first()
    if agreed is None:
        raise NotFound("Action")
    try:
        actions.do_remove_action(acting_user=request.user, agreed=agreed)
    except ValidationError as error:
        return _room(request, discussion, status=400, errors=error.messages)
    messages.success(request, "Action removed.")
    return _after(request, discussion, f"actions-{agreed.item_id}")


@login_required
def history(request, discussion_id):
    discussion = policy.access_discussion(request.user, discussion_id)
    return render(request, "discussions/history.html", {
        "discussion": discussion, **selectors.record_history(request.user, discussion)})


@login_required
def my_actions(request):
    return render(request, "discussions/my_actions.html", {
        **selectors.my_actions(request.user), "form": CompleteForm(), "nav": "actions"})


@login_required
@require_POST
def action_complete(request, action_id):
    agreed, _access = policy.access_agreed_action(request.user, action_id)
    # Named as this action's box on the page (outcome-<id>): the error summary links to it.
    form = CompleteForm(request.POST, auto_id=f"%s-{agreed.pk}")
    if form.is_valid():
        try:
            actions.do_complete_action(acting_user=request.user, agreed=agreed,
                                       outcome=form.cleaned_data["outcome"])
        except ValidationError as error:
            _add_action_errors(form, error)
        else:
            messages.success(request, f"Marked as done: {agreed.description}")
            return redirect("discussions:my_actions")
    return render(request, "discussions/my_actions.html", {
        **selectors.my_actions(request.user), "form": form, "form_action": agreed.pk,
        "nav": "actions"}, status=400)
