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

PLAN_FAULT_MESSAGE = ("The plan could not be saved because of a fault on our side. Nothing was "
                      "saved, and your text is still here: try again in a moment.")


@login_required
def plan_detail(request, case_id):
    access = policy.access_case(request.user, case_id)
    context = selectors.case_plan(access, "plan")
    return render(request, "casenotes/plan.html", {
        **context,
        "can_edit": access.case.is_open and policy.can(request.user, Action.EDIT_PLAN, access),
    })


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request, case_id):
    """Change the plan. If someone else saved meanwhile, the parts only one of them
    changed are kept from each; where both changed the same part the save is refused,
    the plan saved now is shown, and what was typed stays in the form."""
    access = policy.access_case(request.user, case_id, Action.EDIT_PLAN)
    context = selectors.case_plan(access, "plan form")
    plan = context["plan"]
    form = PlanForm(request.POST if request.method == "POST" else None,
                    initial=PlanForm.initial_for(plan))
    saved_now, status = None, 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = actions.do_update_plan(acting_user=request.user, case=access.case,
                                           based_on=data["based_on"], sections=data["sections"],
                                           review_on=data["review_on"])
        except actions.PlanChanged as changed:
            saved_now = changed.current
            form.add_error(None, f"{changed} Compare your text with the plan saved now, then "
                                 "save again.")
            # What is typed stays where it clashes; elsewhere the form takes the parts
            # the other person changed. The next save is based on the version now shown.
            form.data = form.data.copy()
            kept = {name: changed.merged[name] for name in PlanForm.SECTION_NAMES
                    if name not in changed.clashes}
            if "review_on" not in changed.clashes:
                kept.update(PlanForm.review_parts(changed.merged["review_on"]))
            for name, value in kept.items():
                form.data[name] = str(value)
            form.data["based_on"] = str(saved_now.version)
            status = 409
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
    if form.errors and status == 200:
        status = 400
    return render(request, "casenotes/plan_form.html", {
        **context, "form": form, "saved_now": saved_now,
    }, status=status)
