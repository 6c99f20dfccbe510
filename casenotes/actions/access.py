"""Who may open a case, and changes to it: lead practitioner, keyworkers, transfers
between teams (step up, step down), sealed-note readers and break-glass.

Every change is audited, kept in history, and takes effect at once: pages and searches
ask the policy on every request, and open live connections of everyone affected are
told to re-check (after commit) and are closed if their access has gone. Expiry needs
no job: the policy ignores rows whose `expires_at` has passed.
"""

import dataclasses
import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import record
from audit.models import AuditAction
from casenotes.actions.notes import NOTE_HISTORY, _grant_team, _not_working_on, _publish
from casenotes.models import (
    Case,
    CaseEvent,
    CaseGrant,
    CaseGroupObjectPermission,
    CaseNote,
    CaseTransfer,
    CaseUserObjectPermission,
)
from casenotes.permissions import CONTRIBUTE, VIEW_CASE, Action, NotFound, policy
from casenotes.rules import two_years_on
from teams.models import Role, Team
from teams.selectors import active_case_memberships, actor_for, team_members
from workspace import live


def _managed_case(acting_user, case: Case):
    """The case locked, and the manager's access to it; NotFound for anyone else."""
    case = Case.objects.select_for_update(no_key=True).select_related("allocated_team").get(pk=case.pk)
    access = policy.case_access(acting_user, case)
    if access is None or not policy.can(acting_user, Action.MANAGE_CASE_ACCESS, access):
        raise NotFound("Case")
    return case, access


def _case_id_of(grant: CaseGrant) -> int:
    """The case a grant is on, read before either is locked: every action that changes
    a case's grants locks the case first, then the grant (adding a keyworker ends a
    running emergency access under the case's lock), so two of them never hold one
    lock each and wait for the other's."""
    return CaseGrant.objects.filter(pk=grant.pk).values_list("case_id", flat=True).get()


def _managed_grant(acting_user, grant: CaseGrant):
    """The grant and its case, locked case first (`_case_id_of`), and the manager's
    access to the case; NotFound for anyone else."""
    case, access = _managed_case(acting_user, Case(pk=_case_id_of(grant)))
    grant = CaseGrant.objects.select_for_update(no_key=True).select_related("user").get(pk=grant.pk)
    return grant, case, access


def _notify_team(team: Team) -> None:
    for membership in team_members(team):
        live.notify_access_changed(membership.user_id)


def _end_of_day(day: datetime.date) -> datetime.datetime:
    """The moment `day` ends, local time: access 'until 3 March' lasts all of 3 March."""
    midnight = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min)
    return timezone.make_aware(midnight)


# --- lead practitioner --------------------------------------------------------------

@transaction.atomic
def do_allocate_lead(*, acting_user, case: Case, lead) -> Case:
    case, access = _managed_case(acting_user, case)
    if not case.is_open:
        raise ValidationError("This case is closed. Its lead practitioner cannot be changed.")
    team_ids = {m.user_id for m in team_members(case.allocated_team)
                if m.role != Role.TEAM_MANAGER or m.user_id == acting_user.pk}
    if lead is None or lead.pk not in team_ids:
        raise ValidationError({"lead": f"Choose a member of {case.allocated_team.name}."})
    if case.lead_practitioner_id == lead.pk:
        return case
    case.lead_practitioner = lead
    case.full_clean(exclude=["allocated_team", "lead_practitioner"])
    case._history_user = acting_user
    case.save()
    record(actor=access.actor, action=AuditAction.LEAD_ALLOCATED, object_type="case",
           object_id=case.pk, case_id=case.pk, reason=f"lead practitioner {lead.get_username()}")
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED, case_locked=True)
    return case


@transaction.atomic
def do_change_legal_basis(*, acting_user, case: Case, category: str, reason: str,
                          based_on: str | None = None) -> Case:
    """The case's team manager records a new legal basis (a child protection plan made
    or ended, say); the case's history keeps every one, and the chronology shows it.
    `based_on`: the legal basis the page showed; if someone has changed it since (two
    managers at once), nothing changes and the manager is told."""
    case, access = _managed_case(acting_user, case)
    if not case.is_open:
        raise ValidationError("This case is closed. Its legal basis cannot be changed.")
    labels = dict(Case.Category.choices)
    if based_on is not None and based_on != case.category:
        raise ValidationError({"category": (
            f"Someone has changed the legal basis to {case.get_category_display().lower()} since "
            "this page was shown. Check it, then change it again if you still need to.")})
    if category not in labels:
        raise ValidationError({"category": "Choose the legal basis from the list."})
    if category == case.category:
        raise ValidationError({"category": f"The legal basis is already {labels[category].lower()}."})
    if not (reason or "").strip():
        raise ValidationError({"category_reason": "Enter why the legal basis is changing, for "
                                                  "example the decision of a child protection "
                                                  "conference."})
    before = case.get_category_display()
    case.category = category
    case.category_reason = (reason or "").strip()
    case.full_clean(exclude=["allocated_team", "lead_practitioner"])
    case._history_user = acting_user
    case.save()
    record(actor=access.actor, action=AuditAction.LEGAL_BASIS_CHANGED, object_type="case",
           object_id=case.pk, case_id=case.pk,
           reason=f"{before.lower()} to {labels[category].lower()}")
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED, case_locked=True)
    return case


# --- per-user grants ------------------------------------------------------------------

def _permissions(*codenames: str) -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label="casenotes",
                                          codename__in=codenames).order_by("codename"))


def _clear_dead_rows(case: Case, user, acting_user, actor) -> None:
    """Remove the user's rows on `case` that no longer grant anything (expired, or of an
    ended grant), so a new grant can be made; each removal is kept in history."""
    now = timezone.now()
    for row in CaseUserObjectPermission.objects.filter(content_object=case, user=user) \
            .select_related("grant", "permission"):
        dead = (row.expires_at is not None and row.expires_at <= now) or (
            row.grant is not None and not row.grant.is_live(now))
        if dead:
            _delete_user_row(row, acting_user, actor, reason="expired")


def _delete_user_row(row: CaseUserObjectPermission, acting_user, actor, *, reason: str) -> None:
    row._history_user = acting_user
    codename, case_id = row.permission.codename, row.content_object_id
    row.delete()
    record(actor=actor, action=AuditAction.PERMISSION_REVOKED, object_type="case",
           object_id=case_id, case_id=case_id,
           reason=f"{codename} from {row.user.get_username()}: {reason}")


def _give(grant: CaseGrant, codenames: tuple[str, ...], acting_user, actor) -> None:
    for permission in _permissions(*codenames):
        row = CaseUserObjectPermission(user=grant.user, permission=permission,
                                       content_object=grant.case, grant=grant,
                                       expires_at=grant.expires_at)
        row._history_user = acting_user
        row.save()
        record(actor=actor, action=AuditAction.PERMISSION_GRANTED, object_type="case",
               object_id=grant.case_id, case_id=grant.case_id,
               reason=f"{permission.codename} to {grant.user.get_username()}: "
                      f"{grant.get_kind_display().lower()}")


def _end_grant(grant: CaseGrant, acting_user, actor, *, reason: str) -> None:
    grant.ended_at, grant.ended_by = timezone.now(), acting_user
    grant._history_user = acting_user
    grant.save()
    for row in grant.permission_rows.select_related("permission", "user"):
        _delete_user_row(row, acting_user, actor, reason=reason)


@transaction.atomic
def do_add_keyworker(*, acting_user, case: Case, user, until: datetime.date | None = None
                     ) -> CaseGrant:
    """Let a practitioner from outside the allocated team work on the case (view and
    add to it), until the end of `until` or until removed."""
    case, access = _managed_case(acting_user, case)
    errors = {}
    if user is None or not active_case_memberships(user):
        errors["user"] = "Choose a practitioner who works on cases."
    if until is not None and until < timezone.localdate():
        errors["until"] = "The end date must be today or in the future."
    elif until is not None and until > two_years_on(timezone.localdate()):
        errors["until"] = ("The end date must be within the next 2 years. Leave it blank for "
                           "access until the keyworker is removed.")
    if not case.is_open:
        errors["__all__"] = "This case is closed. Keyworkers cannot be added to a closed case."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    live_grants = CaseGrant.objects.filter(case=case, user=user, kind=CaseGrant.Kind.KEYWORKER,
                                           ended_at__isnull=True)
    if any(g.is_live(now) for g in live_grants):
        raise ValidationError({"user": f"{user.get_full_name() or user.get_username()} "
                                       "is already a keyworker on this case."})
    actor = access.actor
    _clear_dead_rows(case, user, acting_user, actor)
    # A break-glass grant still running gives way to the real relationship.
    for grant in CaseGrant.objects.filter(case=case, user=user, kind=CaseGrant.Kind.BREAK_GLASS,
                                          ended_at__isnull=True):
        if grant.is_live(now):
            _end_grant(grant, acting_user, actor, reason="replaced by a keyworker grant")
    grant = CaseGrant(case=case, user=user, kind=CaseGrant.Kind.KEYWORKER, granted_by=acting_user,
                      starts_at=now, expires_at=_end_of_day(until) if until else None)
    grant.full_clean(exclude=["case", "user", "granted_by"])
    grant._history_user = acting_user
    grant.save()
    _give(grant, (VIEW_CASE, CONTRIBUTE), acting_user, actor)
    record(actor=actor, action=AuditAction.KEYWORKER_ADDED, object_type="grant",
           object_id=grant.pk, case_id=case.pk,
           reason=f"{user.get_username()}" + (f" until {until:%d %b %Y}" if until else ""))
    live.notify_access_changed(user.pk)
    return grant


@transaction.atomic
def do_remove_keyworker(*, acting_user, grant: CaseGrant) -> CaseGrant:
    grant, case, access = _managed_grant(acting_user, grant)
    if grant.kind != CaseGrant.Kind.KEYWORKER:
        raise NotFound("Keyworker")
    if not grant.is_live():
        raise ValidationError("This keyworker's access has already ended.")
    actor = access.actor
    _end_grant(grant, acting_user, actor, reason="keyworker removed")
    record(actor=actor, action=AuditAction.KEYWORKER_REMOVED, object_type="grant",
           object_id=grant.pk, case_id=case.pk, reason=grant.user.get_username())
    live.notify_access_changed(grant.user_id)
    return grant


# --- break-glass ---------------------------------------------------------------------

@transaction.atomic
def do_open_break_glass(*, acting_user, case: Case, reason_code: str, reason: str = ""
                        ) -> CaseGrant:
    """Emergency, read-only access to a case's standard content for a few hours, for a
    practitioner not working on it. Logged, shown to IG at once, ends by itself."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    memberships = active_case_memberships(acting_user)
    if not memberships:
        raise NotFound("Case")  # only practitioners; nobody else learns the case exists
    if policy.case_access(acting_user, case) is not None:
        raise ValidationError("You already have access to this case. Open it from your "
                              "caseload or the search results.")
    reason = (reason or "").strip()
    errors = {}
    if reason_code not in CaseGrant.Reason.values:
        errors["reason_code"] = "Choose why you need emergency access."
    elif reason_code == CaseGrant.Reason.OTHER and not reason:
        errors["reason"] = "Explain why you need emergency access."
    if len(reason) > 500:
        errors["reason"] = f"The reason must be 500 characters or fewer (it has {len(reason)})."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    actor = actor_for(acting_user, memberships[0])
    _clear_dead_rows(case, acting_user, acting_user, actor)
    grant = CaseGrant(
        case=case, user=acting_user, kind=CaseGrant.Kind.BREAK_GLASS, reason_code=reason_code,
        reason=reason, granted_by=acting_user, starts_at=now,
        expires_at=now + datetime.timedelta(hours=settings.BREAK_GLASS_HOURS),
    )
    grant.full_clean(exclude=["case", "user", "granted_by"])
    grant._history_user = acting_user
    grant.save()
    marked = dataclasses.replace(actor, break_glass_id=grant.pk)
    _give(grant, (VIEW_CASE,), acting_user, marked)
    record(actor=marked, action=AuditAction.BREAK_GLASS_OPENED, object_type="case",
           object_id=case.pk, case_id=case.pk,
           reason=f"{grant.get_reason_code_display()}" + (f": {reason}" if reason else ""))
    return grant


# --- transfers, step up, step down ------------------------------------------------------

@transaction.atomic
def do_request_transfer(*, acting_user, case: Case, to_team: Team | None, reason: str,
                        handover_days: int | None = None) -> CaseTransfer:
    case, access = _managed_case(acting_user, case)
    reason = (reason or "").strip()
    handover_days = settings.HANDOVER_DAYS if handover_days is None else handover_days
    errors: dict[str, str] = {}
    if to_team is None:
        errors["to_team"] = "Choose the team to transfer the case to."
    elif to_team.pk == case.allocated_team_id:
        errors["to_team"] = f"Choose a different team: the case is already with {to_team.name}."
    elif not to_team.is_active:
        errors["to_team"] = f"{to_team.name} is not an active team. Choose another."
    if not reason:
        errors["reason"] = "Enter the reason for the transfer."
    elif len(reason) > 1000:
        errors["reason"] = f"The reason must be 1,000 characters or fewer (it has {len(reason):,})."
    if not 0 <= int(handover_days) <= settings.HANDOVER_DAYS_MAX:
        errors["handover_days"] = (
            f"The hand-over period must be between 0 and {settings.HANDOVER_DAYS_MAX} days.")
    if not case.is_open:
        errors["__all__"] = "This case is closed. A closed case cannot be transferred."
    elif CaseTransfer.objects.filter(case=case, status=CaseTransfer.Status.REQUESTED).exists():
        errors["__all__"] = ("There is already an open transfer request for this case. "
                             "Withdraw it before making another.")
    if errors:
        raise ValidationError(errors)
    transfer = CaseTransfer(case=case, from_team=case.allocated_team, to_team=to_team,
                            reason=reason, handover_days=int(handover_days),
                            requested_by=acting_user)
    transfer.full_clean(exclude=["case", "from_team", "to_team", "requested_by"])
    transfer._history_user = acting_user
    transfer.save()
    record(actor=access.actor, action=AuditAction.TRANSFER_REQUESTED, object_type="transfer",
           object_id=transfer.pk, case_id=case.pk, reason=f"to {to_team.name}: {reason}")
    return transfer


@transaction.atomic
def do_withdraw_transfer(*, acting_user, transfer: CaseTransfer) -> CaseTransfer:
    transfer = CaseTransfer.objects.select_for_update(no_key=True).get(pk=transfer.pk)
    case, access = _managed_case(acting_user, transfer.case)
    if not transfer.is_open:
        raise ValidationError(f"This request has already been {transfer.get_status_display().lower()}.")
    transfer.status, transfer.decided_by, transfer.decided_at = (
        CaseTransfer.Status.WITHDRAWN, acting_user, timezone.now())
    transfer._history_user = acting_user
    transfer.save()
    record(actor=access.actor, action=AuditAction.TRANSFER_WITHDRAWN, object_type="transfer",
           object_id=transfer.pk, case_id=case.pk)
    return transfer


@transaction.atomic
def do_decide_transfer(*, acting_user, transfer: CaseTransfer, accept: bool, reason: str
                       ) -> CaseTransfer:
    """The receiving team's manager accepts or rejects, with a reason. On acceptance the
    case moves: the new team gets full access, the old team keeps read-only access for
    the hand-over period and then loses it by itself."""
    transfer = CaseTransfer.objects.select_for_update(no_key=True).select_related(
        "to_team", "from_team").get(pk=transfer.pk)
    case = (Case.objects.select_for_update(no_key=True).select_related("allocated_team")
            .get(pk=transfer.case_id))
    managing = [m for m in active_case_memberships(acting_user)
                if m.role == Role.TEAM_MANAGER and m.team_id == transfer.to_team_id]
    if not managing:
        raise NotFound("Transfer request")
    actor = actor_for(acting_user, managing[0])
    reason = (reason or "").strip()
    if not transfer.is_open:
        raise ValidationError(
            f"This request has already been {transfer.get_status_display().lower()}.")
    if not reason:
        raise ValidationError({"decision_reason": "Enter the reason for your decision."})
    if len(reason) > 1000:
        raise ValidationError({"decision_reason":
                               f"The reason must be 1,000 characters or fewer (it has {len(reason):,})."})
    if accept and (not case.is_open or case.allocated_team_id != transfer.from_team_id
                   or not transfer.to_team.is_active):
        raise ValidationError("This case has changed since the request was made (closed, moved "
                              "or the team made inactive). Reject the request instead.")
    now = timezone.now()
    transfer.decided_by, transfer.decided_at, transfer.decision_reason = acting_user, now, reason
    transfer._history_user = acting_user
    if not accept:
        transfer.status = CaseTransfer.Status.REJECTED
        transfer.save()
        record(actor=actor, action=AuditAction.TRANSFER_REJECTED, object_type="transfer",
               object_id=transfer.pk, case_id=case.pk, reason=reason)
        return transfer

    handover_ends = now + datetime.timedelta(days=transfer.handover_days)
    transfer.status, transfer.handover_ends_at = CaseTransfer.Status.ACCEPTED, handover_ends
    transfer.save()
    old_team = case.allocated_team
    case.allocated_team, case.lead_practitioner = transfer.to_team, None
    case.full_clean(exclude=["allocated_team", "lead_practitioner"])
    case._history_user = acting_user
    case.save()
    record(actor=actor, action=AuditAction.TRANSFER_ACCEPTED, object_type="transfer",
           object_id=transfer.pk, case_id=case.pk, reason=reason)
    record(actor=actor, action=AuditAction.CASE_ALLOCATED, object_type="case", object_id=case.pk,
           case_id=case.pk, reason=f"from {old_team.name} to {transfer.to_team.name}")
    _grant_team(case, transfer.to_team, acting_user, reason=f"transferred to {transfer.to_team.name}",
                actor=actor)
    _hand_over(case, old_team, handover_ends if transfer.handover_days else None, acting_user, actor)
    _notify_team(old_team)
    _notify_team(transfer.to_team)
    _publish(case.pk, CaseEvent.Kind.CASE_UPDATED, case_locked=True)
    return transfer


def _hand_over(case: Case, team: Team, ends_at, acting_user, actor) -> None:
    """The old team may only read, and only until `ends_at` (None: not at all)."""
    for row in CaseGroupObjectPermission.objects.filter(content_object=case, group=team.group) \
            .select_related("permission"):
        row._history_user = acting_user
        if row.permission.codename == VIEW_CASE and ends_at is not None:
            row.expires_at = ends_at
            row.save()
            record(actor=actor, action=AuditAction.PERMISSION_GRANTED, object_type="case",
                   object_id=case.pk, case_id=case.pk,
                   reason=f"view_case to team {team.name}: read-only hand-over until "
                          f"{timezone.localtime(ends_at):%d %b %Y %H:%M}")
        else:
            codename = row.permission.codename
            row.delete()
            record(actor=actor, action=AuditAction.PERMISSION_REVOKED, object_type="case",
                   object_id=case.pk, case_id=case.pk,
                   reason=f"{codename} from team {team.name}: case transferred")


# --- sealed notes: who may read ------------------------------------------------------------

@transaction.atomic
def do_share_sealed_note(*, acting_user, note: CaseNote, readers) -> CaseNote:
    """The author of a finalised sealed note names who may read it. Each reader added
    or removed is audited; one history version records the new list."""
    note = CaseNote.objects.select_for_update(no_key=True).select_related("case").get(pk=note.pk)
    access = policy.case_access(acting_user, note.case)
    if not policy.can_on_note(access, Action.SHARE_NOTE, note):
        raise NotFound("Note")
    readers = {r.pk: r for r in readers if r.pk != acting_user.pk}
    if any(_not_working_on(r, note.case) for r in readers.values()):
        raise ValidationError({"readers": "Named readers must be people working on this case."})
    if not note.case.is_open:
        raise ValidationError("This case is closed. Who may read its notes cannot be changed.")
    before = set(note.readers.values_list("pk", flat=True))
    added, removed = set(readers) - before, before - set(readers)
    if not added and not removed:
        return note
    # One version for the whole change (simple-history would add one per link, unnamed).
    note.skip_history_when_saving = True
    try:
        note.readers.set(list(readers.values()))
    finally:
        del note.skip_history_when_saving
    note._history_user = acting_user
    NOTE_HISTORY.create_historical_record(note, "~")
    actor = access.actor
    names = dict(get_user_model().objects.filter(pk__in=added | removed)
                 .values_list("pk", "username"))
    for user_id in sorted(added):
        record(actor=actor, action=AuditAction.SEALED_SHARED, object_type="note",
               object_id=note.pk, case_id=note.case_id, reason=f"with {names[user_id]}")
    for user_id in sorted(removed):
        record(actor=actor, action=AuditAction.SEALED_UNSHARED, object_type="note",
               object_id=note.pk, case_id=note.case_id, reason=f"from {names[user_id]}")
    event = _publish(note.case_id, CaseEvent.Kind.NOTE_SHARED, note)
    for user_id in sorted(removed):
        live.send_on_commit(live.viewer_group(note.case_id, user_id), {
            "type": "case.event", "seq": event.seq, "kind": "note.withdrawn", "note": note.pk})
    return note



# --- information governance: reviewing emergency access ----------------------------------

@transaction.atomic
def do_review_break_glass(*, acting_user, grant: CaseGrant, review: str, note: str = "",
                          end_now: bool = False, seen_review: str | None = None) -> CaseGrant:
    """An IG officer records the outcome of reviewing one use of emergency access and,
    with `end_now`, ends that access at once if it is still running. `seen_review`: when
    the review the page showed was recorded ("" for none); if another officer has
    reviewed it since, nothing is recorded and the officer is told."""
    if not policy.can(acting_user, Action.REVIEW_BREAK_GLASS):
        raise NotFound("Emergency access")
    Case.objects.select_for_update(no_key=True).filter(pk=_case_id_of(grant)).values_list(
        "pk", flat=True).get()  # the case first, as every change to a grant (`_case_id_of`)
    grant = CaseGrant.objects.select_for_update(no_key=True).get(pk=grant.pk)
    if grant.kind != CaseGrant.Kind.BREAK_GLASS:
        raise NotFound("Emergency access")
    if seen_review is not None and seen_review != review_stamp(grant):
        if grant.reviewed_by is None:  # the page claims a review there is not
            raise ValidationError("This page is out of date. Reload it, then record your review.")
        by = grant.reviewed_by.get_full_name() or grant.reviewed_by.get_username()
        raise ValidationError(
            f"{by} has reviewed this emergency access since this page was shown "
            f"({grant.get_review_display().lower()}). Read their review below, then record "
            "yours if it is still needed.")
    if grant.user_id == acting_user.pk:
        raise ValidationError("You cannot review your own emergency access: another IG "
                              "officer must.")
    note = (note or "").strip()
    if review not in (CaseGrant.Review.APPROPRIATE, CaseGrant.Review.FOLLOW_UP):
        raise ValidationError({"review": "Choose the outcome of your review."})
    if review == CaseGrant.Review.FOLLOW_UP and not note:
        raise ValidationError({"note": "Say what needs following up."})
    if len(note) > 1000:
        raise ValidationError({"note": f"The note must be 1,000 characters or fewer (it has {len(note):,})."})
    if end_now and not grant.is_live():
        raise ValidationError({"end_now": "This emergency access has already ended."})
    grant.review, grant.review_note = review, note
    grant.reviewed_by, grant.reviewed_at = acting_user, timezone.now()
    grant._history_user = acting_user
    grant.save()
    actor = actor_for(acting_user)
    record(actor=actor, action=AuditAction.BREAK_GLASS_REVIEWED,
           object_type="grant", object_id=grant.pk, case_id=grant.case_id,
           reason=grant.get_review_display())
    if end_now:
        _end_break_glass(grant, acting_user, actor, by="IG review")
    return grant


@transaction.atomic
def do_end_break_glass(*, acting_user, grant: CaseGrant) -> CaseGrant:
    """The case's team manager ends someone's emergency access to it before it runs out:
    their open pages of the case close within seconds and nothing more reaches them."""
    grant, case, access = _managed_grant(acting_user, grant)
    if grant.kind != CaseGrant.Kind.BREAK_GLASS:
        raise NotFound("Emergency access")
    if not grant.is_live():
        raise ValidationError("This emergency access has already ended.")
    _end_break_glass(grant, acting_user, access.actor, by="case manager")
    return grant


def review_stamp(grant: CaseGrant) -> str:
    """When a grant's current review was recorded, as a review page carries it ("" for
    none): a review sent from a page showing another stamp is out of date."""
    return grant.reviewed_at.isoformat() if grant.reviewed_at else ""


def _end_break_glass(grant: CaseGrant, acting_user, actor, *, by: str) -> None:
    _end_grant(grant, acting_user, actor, reason=f"emergency access ended early ({by})")
    record(actor=actor, action=AuditAction.BREAK_GLASS_ENDED, object_type="grant",
           object_id=grant.pk, case_id=grant.case_id, reason=f"by {by}")
    live.notify_access_changed(grant.user_id)
