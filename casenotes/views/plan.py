"""The family's plan: read by everyone on the case, written by the team together."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from casenotes import actions, selectors
from casenotes.forms import PlanForm
from casenotes.permissions import Action, policy
from casenotes.views.notes import _add_action_errors, _fault
from discussions import selectors as discussion_selectors

PLAN_FAULT_MESSAGE = ("The plan could not be saved because of a fault on our side. Nothing was "
                      "saved, and your text is still here: try again in a moment.")


@login_required
def plan_detail(request, case_id):
    access = policy.access_case(request.user, case_id)
    context = selectors.case_plan(access, "plan")
    return render(request, "casenotes/plan.html", {
        **context, "filed": discussion_selectors.latest_record(access, context["plan"]),
        "can_edit": access.case.is_open and policy.can(request.user, Action.EDIT_PLAN, access),
    })


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request, case_id):
    """Change the plan. If someone else saved meanwhile, the parts only one of them
    changed are kept from each; where both changed the same part the save is refused,
    the plan saved now is shown, and what was typed stays in the form. The plan is read
    (and that read audited) only when the form is shown, not on a save that goes through."""
    access = policy.access_case(request.user, case_id, Action.EDIT_PLAN)
    if request.method == "GET":
        context = selectors.case_plan(access, "plan form")
        return _form_adding_record(request, access, context,
                                   PlanForm.initial_for(context["plan"]),
                                   adding=request.GET.get("add") == "discussion")
    if request.POST.get("add") == "discussion" and access.case.is_open:
        # Not a save: the form again, as typed, with the record added below each part.
        return _form_adding_record(request, access, selectors.case_plan(access, "plan form"),
                                   PlanForm.initial_from(request.POST), adding=True)
    form = PlanForm(request.POST)
    saved_now, status = None, 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            saved = actions.do_update_plan(acting_user=request.user, case=access.case,
                                           based_on=data["based_on"], sections=data["sections"],
                                           review_on=data["review_on"])
        except actions.PlanChanged as changed:
            saved_now, status = changed.current, 409
            _keep_both(form, changed)
        except ValidationError as error:
            _add_action_errors(form, error)
        except DatabaseError:
            status = _fault(form, PLAN_FAULT_MESSAGE)
        else:
            if not saved.changed_fields:
                messages.info(request, "Nothing was changed in the plan.")
            elif saved.version > data["based_on"] + 1:
                messages.success(request, "Plan saved. Someone else changed other parts of it "
                                          "while you had it open: their changes are kept too.")
            else:
                messages.success(request, "Plan saved.")
            return redirect("casenotes:plan_detail", case_id=access.case.pk)
    context = selectors.case_plan(access, "plan form")
    return render(request, "casenotes/plan_form.html", {
        **context, "form": form, "saved_now": saved_now,
        "filed": discussion_selectors.latest_record(access, context["plan"]),
    }, status=status)


def _form_adding_record(request, access, context: dict, initial: dict, *, adding: bool):
    """The plan form, offering the newest group case discussion record filed into the
    case; with `adding`, that record is added below each part's text (shown, not saved:
    the team checks it, then saves)."""
    filed = discussion_selectors.latest_record(access, context["plan"])
    added = None
    adding = adding and access.case.is_open  # a closed case's form is not shown
    if adding and filed is not None:
        added = [PlanForm.base_fields[name].label for name in
                 discussion_selectors.add_record_to_plan(access, filed, initial)]
    return render(request, "casenotes/plan_form.html", {
        **context, "form": PlanForm(initial=initial), "filed": filed, "adding": adding,
        "added": added,
    })


def _keep_both(form: PlanForm, changed: actions.PlanChanged) -> None:
    """After a clash: each clashing part keeps what was typed and says so; every other
    part takes the plan as merged (the other person's change where only they made one);
    the next save is based on the version now shown."""
    form.add_error(None, f"{changed} Compare your text with the plan saved now, then save "
                         "again.")
    who = changed.current_author
    for name in changed.clashes:
        field = "review_day" if name == "review_on" else name
        form.add_error(field, f"{who} changed this too. Your text is here; the plan saved now "
                              "is shown above.")
    form.data = form.data.copy()
    kept = {name: changed.merged[name] for name in PlanForm.SECTION_NAMES
            if name not in changed.clashes}
    if "review_on" not in changed.clashes:
        kept.update(PlanForm.review_parts(changed.merged["review_on"]))
    for name, value in kept.items():
        form.data[name] = str(value)
    form.data["based_on"] = str(changed.current.version)
