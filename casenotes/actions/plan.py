"""The one write to a family's plan.

Like every action: it validates (a ValidationError a practitioner can act on), writes
in one transaction under a lock on the case, sets the history user, writes its audit
entry (the parts changed, never their text) and queues its live notice for after commit.
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import record
from audit.models import AuditAction
from casenotes.actions.notes import _publish
from casenotes.models import PLAN_SECTION_MAX_LENGTH, Case, CaseEvent, CasePlan
from casenotes.permissions import Action, NotFound, policy
from casenotes.rules import two_years_on
from workspace.validators import no_nul


class PlanChanged(Exception):
    """An edit of the plan based on a version that has moved on, where someone else
    changed a part the editor changed too. Nothing was saved. Carries the plan as saved
    now (to compare), the parts both changed (`clashes`, field names) and `merged`: each
    field as the form should now hold it (the editor's text where they changed it, the
    saved text where only the other person did), so that saving again keeps both."""

    def __init__(self, current: CasePlan, clashes: list[str], merged: dict):
        user = current.updated_by
        self.current_author = (user.get_full_name() or user.get_username()) if user else "Someone else"
        parts = ", ".join(f"'{CasePlan.LABELS[name]}'" for name in clashes)
        super().__init__(f"{self.current_author} changed {parts} of the plan "
                         f"{_when(current.updated_at)} while you had this page open, and so did "
                         "you. Nothing you typed has been saved yet.")
        self.current, self.clashes, self.merged = current, clashes, merged


def _when(moment: datetime.datetime | None) -> str:
    """'at 09:12' today, 'on 3 Dec at 09:12' another day."""
    if moment is None:
        return "just now"
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return f"at {local:%H:%M}"
    return f"on {local.day} {local:%b} at {local:%H:%M}"


def _version_fields(plan: CasePlan, version: int) -> dict | None:
    """The plan's fields as they were at `version` (0: before its first save); None if
    there was no such version."""
    if version == 0:
        return {**{name: "" for name, _ in CasePlan.SECTIONS}, "review_on": None}
    if plan.pk is None:
        return None
    return plan.history.filter(version=version).values(*CasePlan.LABELS).first()


def _merged(plan: CasePlan, base: dict, mine: dict) -> tuple[dict, list[str]]:
    """Three-way, from the version the editor saw (`base`): each field as it should be
    saved, and the fields both changed in different ways."""
    merged, clashes = {}, []
    for name in CasePlan.LABELS:
        theirs = getattr(plan, name)
        if mine[name] == base[name] or mine[name] == theirs:
            merged[name] = theirs  # unchanged by the editor, or changed alike
        elif theirs == base[name]:
            merged[name] = mine[name]  # changed only by the editor
        else:
            merged[name] = mine[name]
            clashes.append(name)
    return merged, clashes


def _validated_plan_fields(sections: dict[str, str], review_on: datetime.date | None,
                           kept_dates: set) -> dict:
    """The parts as they will be saved, and the review date; a review date that is
    new (not one of `kept_dates`, those the plan had) must be from today to 2 years on."""
    errors: dict[str, list[str]] = {}
    fields: dict = {}
    for name, label in CasePlan.SECTIONS:
        text = (sections.get(name) or "").strip().replace("\r\n", "\n")
        try:
            no_nul(text)
        except ValidationError as error:
            errors[name] = error.messages
            continue
        if len(text) > PLAN_SECTION_MAX_LENGTH:
            errors[name] = [f"'{label}' must be {PLAN_SECTION_MAX_LENGTH:,} characters or "
                            f"fewer (it has {len(text):,})."]
        fields[name] = text
    if review_on is not None and review_on not in kept_dates:
        today = timezone.localdate()
        if review_on < today:
            errors["review_on"] = ["The review date must be today or in the future."]
        elif review_on > two_years_on(today):
            errors["review_on"] = ["The review date must be within the next 2 years."]
    fields["review_on"] = review_on
    if errors:
        raise ValidationError(errors)
    return fields


@transaction.atomic
def do_update_plan(*, acting_user, case: Case, based_on: int, sections: dict[str, str],
                   review_on: datetime.date | None) -> CasePlan:
    """Save the family's plan: its four parts (`sections`, by field name; a part left
    out is saved empty) and its next review date. `based_on` is the version the editor
    saw (0 before the first save). If someone has saved since, the parts only one of
    them changed are kept from each; if both changed the same part, nothing is saved
    (PlanChanged). A save that changes nothing writes nothing. Every version stays in
    the case's history. The plan returned names the fields this save changed
    (`changed_fields`)."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    access = policy.case_access(acting_user, case)
    if access is None or not policy.can(acting_user, Action.EDIT_PLAN, access):
        raise NotFound("Case")
    plan = (CasePlan.objects.select_related("updated_by").filter(case=case).first()
            or CasePlan(case=case))
    if not case.is_open:
        raise ValidationError("This case is closed. Its plan cannot be changed.")
    based_on = int(based_on)
    seen = _version_fields(plan, based_on) if based_on != plan.version else None
    if based_on != plan.version and seen is None:
        # Not a version the plan ever had: the page was not this plan's.
        raise ValidationError({"based_on": "Reload the page and make your changes again."})
    fields = _validated_plan_fields(sections, review_on, kept_dates={
        plan.review_on, seen["review_on"] if seen else None} - {None})
    if based_on != plan.version:
        # Someone saved since the editor opened the plan: keep both where they changed
        # different parts; refuse, keeping what was typed, where they changed the same.
        fields, clashes = _merged(plan, seen, fields)
        if clashes:
            raise PlanChanged(plan, clashes, fields)
    changed = [name for name, value in fields.items() if getattr(plan, name) != value]
    plan.changed_fields = changed  # for the page's message; not stored
    if not changed:
        return plan
    for name in changed:
        setattr(plan, name, fields[name])
    plan.version += 1
    plan.updated_by = acting_user
    plan.updated_at = timezone.now()
    plan.full_clean(exclude=["case", "updated_by"])
    plan._history_user = acting_user
    plan.save()
    record(actor=access.actor, action=AuditAction.PLAN_UPDATED, object_type="plan",
           object_id=plan.pk, case_id=case.pk,
           reason="changed: " + ", ".join(CasePlan.LABELS[name].lower() for name in changed))
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED, case_locked=True)
    return plan
