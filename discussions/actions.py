"""Every write to group case discussions: scheduling, running, the shared record,
actions, attendance and sign-off.

Each action validates (ValidationError with a message the user can act on; nothing
changed), writes inside one transaction with the discussion row locked (so a save and
a sign-off never interleave), sets the history user, writes its audit entry, and
queues its live notice for after commit (discussions/notices.py).
"""

import dataclasses
import datetime
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import Pending, record, record_many
from audit.models import AuditAction
from casenotes.actions.notes import _publish, do_create_note
from casenotes.models import Case, CaseEvent, CaseNote
from casenotes.permissions import Action, CaseAccess, NotFound, policy
from discussions import notices, selectors
from discussions.merge import merge3
from discussions.models import (
    ACTION_MAX_LENGTH,
    SECTION_MAX_LENGTH,
    AgendaItem,
    AgreedAction,
    Attendance,
    Discussion,
    DiscussionPresence,
    Invitation,
    KeptText,
    Section,
)
from teams.models import Team
from teams.selectors import actor_for, team_members

MAX_AGENDA = 20
MAX_ACTIONS_PER_ITEM = 20
#: A connection not heard from for this long no longer counts as in the room.
PRESENCE_TTL = datetime.timedelta(seconds=90)

NOT_STARTED = "This discussion has not started yet. The record opens when the manager starts it."
SIGNED_OFF = "This discussion has been signed off. Its record can no longer be changed."
CANCELLED = "This discussion was cancelled."


def _save(obj, acting_user, *, exclude=()) -> None:
    obj.full_clean(exclude=list(exclude))
    obj._history_user = acting_user
    obj.save()


def _locked(discussion: Discussion) -> Discussion:
    return Discussion.objects.select_for_update(no_key=True).select_related("team").get(pk=discussion.pk)


def _require_running(discussion: Discussion) -> None:
    if discussion.status == Discussion.Status.SCHEDULED:
        raise ValidationError(NOT_STARTED)
    if discussion.status == Discussion.Status.SIGNED_OFF:
        raise ValidationError(SIGNED_OFF)
    if discussion.status == Discussion.Status.CANCELLED:
        raise ValidationError(CANCELLED)


def _require_scheduled(discussion: Discussion) -> None:
    if discussion.status == Discussion.Status.SIGNED_OFF:
        raise ValidationError(SIGNED_OFF)
    if discussion.status == Discussion.Status.CANCELLED:
        raise ValidationError(CANCELLED)
    if discussion.status != Discussion.Status.SCHEDULED:
        raise ValidationError("The agenda can only be changed before the discussion starts.")


def _manager(acting_user, discussion: Discussion) -> None:
    if not policy.can(acting_user, Action.RUN_DISCUSSION, discussion):
        raise NotFound("Discussion")


def _team_membership(user, team: Team):
    return next((m for m in team_members(team) if m.user_id == user.pk), None)


def _actor(acting_user, team: Team):
    return actor_for(acting_user, _team_membership(acting_user, team))


def _agenda_case_errors(acting_user, cases: Iterable[Case]) -> list[str]:
    errors = []
    cases = list(cases)
    accesses = policy.discussion_case_accesses(acting_user, cases)
    for case in cases:
        access = accesses[case.pk]
        if access is None or not access.can_contribute:
            errors.append(f"You cannot add {case.reference} to the agenda: you are not working on it.")
        elif not case.is_open:
            errors.append(f"{case.reference} is closed: only open cases can be discussed.")
    return errors


# --- scheduling ---------------------------------------------------------------------

@transaction.atomic
def do_schedule_discussion(
    *, acting_user, team: Team, scheduled_for: datetime.datetime | None, cases: Iterable[Case],
    invitees: Iterable, title: str = "",
) -> Discussion:
    """A new discussion with its agenda (cases in the order given) and invitees."""
    if not policy.can(acting_user, Action.SCHEDULE_DISCUSSION, team):
        raise NotFound("Team")
    cases = list(dict.fromkeys(cases))
    invitees = list(dict.fromkeys(invitees))
    errors: dict[str, list[str]] = {}
    if scheduled_for is None:
        errors["scheduled_for"] = ["Enter the date and time of the discussion."]
    elif timezone.localtime(scheduled_for).date() < timezone.localdate():
        errors["scheduled_for"] = ["The discussion must be today or later."]
    if not cases:
        errors["cases"] = ["Choose at least one case for the agenda."]
    elif len(cases) > MAX_AGENDA:
        errors["cases"] = [f"Choose {MAX_AGENDA} cases or fewer for one discussion."]
    else:
        case_errors = _agenda_case_errors(acting_user, cases)
        if case_errors:
            errors["cases"] = case_errors
    members = {m.user_id for m in team_members(team)}
    if any(user.pk not in members for user in invitees):
        errors["invitees"] = [f"Invite members of {team.name} only."]
    title = (title or "").strip() or "Group case discussion"
    if len(title) > 120:
        errors["title"] = ["The title must be 120 characters or fewer."]
    if errors:
        raise ValidationError(errors)
    discussion = Discussion(team=team, title=title, scheduled_for=scheduled_for, chair=acting_user)
    _save(discussion, acting_user, exclude=["team", "chair", "current_item"])
    for user in invitees:
        _save(Invitation(discussion=discussion, user=user), acting_user,
              exclude=["discussion", "user"])
    for case in cases:
        _add_item(acting_user, discussion, case)
    actor = _actor(acting_user, team)
    record_many([Pending(actor=actor, action=AuditAction.DISCUSSION_SCHEDULED,
                         object_type="discussion", object_id=discussion.pk, case_id=case.pk,
                         reason=f"on the agenda of {team.name}'s discussion")
                 for case in cases])
    return discussion


def _add_item(acting_user, discussion: Discussion, case: Case) -> AgendaItem:
    last = discussion.items.order_by("-position").values_list("position", flat=True).first() or 0
    item = AgendaItem(discussion=discussion, case=case, position=last + 1)
    _save(item, acting_user, exclude=["discussion", "case", "filed_note"])
    for kind in Section.Kind.values:
        _save(Section(item=item, kind=kind), acting_user, exclude=["item", "updated_by"])
    return item


@transaction.atomic
def do_add_agenda_case(*, acting_user, discussion: Discussion, case: Case) -> AgendaItem:
    discussion = _locked(discussion)
    _manager(acting_user, discussion)
    _require_scheduled(discussion)
    errors = _agenda_case_errors(acting_user, [case])
    if discussion.items.filter(case=case).exists():
        errors.append(f"{case.reference} is already on the agenda.")
    if discussion.items.count() >= MAX_AGENDA:
        errors.append(f"A discussion can have {MAX_AGENDA} cases at most.")
    if errors:
        raise ValidationError({"case": errors})
    item = _add_item(acting_user, discussion, case)
    record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_CHANGED,
           object_type="discussion", object_id=discussion.pk, case_id=case.pk,
           reason="case added to the agenda")
    return item


@transaction.atomic
def do_remove_agenda_item(*, acting_user, item: AgendaItem) -> None:
    """Take a case off the agenda: before the start, any case; during the meeting, a
    case it did not reach (nothing written in its record, no action agreed), so that
    sign-off does not wait for a decision nobody took. Its record's history stays."""
    discussion = _locked(item.discussion)
    _manager(acting_user, discussion)
    running = discussion.status == Discussion.Status.IN_PROGRESS
    if not running:
        _require_scheduled(discussion)
    item = _still_on_agenda(discussion, item)
    if discussion.items.count() == 1:
        raise ValidationError("A discussion needs at least one case. Cancel it instead."
                              if not running else
                              "A discussion needs at least one case: this is the last one.")
    if running and _written_in(item):
        raise ValidationError(
            f"{item.case.reference}: its record has been written in or an action agreed, so it "
            "stays on the agenda. If the discussion did not reach it, record that as its decision.")
    case_id, item_id = item.case_id, item.pk
    if discussion.current_item_id == item_id:
        discussion.current_item = discussion.items.exclude(pk=item_id).order_by("position").first()
        _save(discussion, acting_user, exclude=["team", "chair", "current_item"])
    item._history_user = acting_user
    for section in item.sections.all():
        section._history_user = acting_user
        section.delete()
    item.delete()
    _renumber(acting_user, discussion)
    record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_CHANGED,
           object_type="discussion", object_id=discussion.pk, case_id=case_id,
           reason="case not reached, removed from the agenda" if running
           else "case removed from the agenda")
    if running:
        notices.agenda_on_commit(discussion, removed=item_id)


def _still_on_agenda(discussion: Discussion, item: AgendaItem) -> AgendaItem:
    """The item as it is now, under the discussion's lock; refused with a message if
    someone took it off the agenda since the page was shown."""
    current = discussion.items.select_related("case").filter(pk=item.pk).first()
    if current is None:
        raise ValidationError("That case is no longer on the agenda: someone has taken it off.")
    return current


def _written_in(item: AgendaItem) -> bool:
    """Whether anything has been recorded for an agenda item: a section saved (even if
    emptied again), a text kept beside one, or an action agreed."""
    return (item.sections.filter(Q(version__gt=1) | ~Q(text="")).exists()
            or KeptText.objects.filter(section__item=item).exists() or item.actions.exists())


@transaction.atomic
def do_move_agenda_item(*, acting_user, item: AgendaItem, up: bool, at: int | None = None) -> None:
    """Move an item one place earlier (up) or later on the agenda. `at`: its place on
    the page the move was asked from; if the agenda has changed since, nothing moves
    (a move sent twice, or two people at once, would move it two places)."""
    discussion = _locked(item.discussion)
    _manager(acting_user, discussion)
    _require_scheduled(discussion)
    item = _still_on_agenda(discussion, item)
    if at is not None and item.position != at:
        raise ValidationError("The agenda has changed since this page was shown. Check it, "
                              "then move the case again.")
    items = list(discussion.items.order_by("position"))
    index = next(i for i, candidate in enumerate(items) if candidate.pk == item.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(items):
        return
    items[index], items[other] = items[other], items[index]
    _renumber(acting_user, discussion, items)
    record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_CHANGED,
           object_type="discussion", object_id=discussion.pk, case_id=item.case_id,
           reason=f"moved {'earlier' if up else 'later'} on the agenda")


def _renumber(acting_user, discussion: Discussion, items: list[AgendaItem] | None = None) -> None:
    """Positions 1..n in the given order (through a free range, so the unique
    constraint holds at every step)."""
    items = items if items is not None else list(discussion.items.order_by("position"))
    offset = 1000
    for stage in (offset, 0):
        for number, item in enumerate(items, start=1):
            if item.position != number + stage:
                item.position = number + stage
                item._history_user = acting_user
                item.save(update_fields=["position"])


@transaction.atomic
def do_cancel_discussion(*, acting_user, discussion: Discussion) -> Discussion:
    discussion = _locked(discussion)
    _manager(acting_user, discussion)
    _require_scheduled(discussion)
    discussion.status = Discussion.Status.CANCELLED
    _save(discussion, acting_user, exclude=["team", "chair", "current_item"])
    record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_CANCELLED,
           object_type="discussion", object_id=discussion.pk)
    notices.status_on_commit(discussion)
    return discussion


# --- running ------------------------------------------------------------------------

@transaction.atomic
def do_start_discussion(*, acting_user, discussion: Discussion) -> Discussion:
    discussion = _locked(discussion)
    _manager(acting_user, discussion)
    if discussion.status == Discussion.Status.IN_PROGRESS:
        raise ValidationError("This discussion has already started.")
    _require_scheduled(discussion)
    discussion.status = Discussion.Status.IN_PROGRESS
    discussion.started_at = timezone.now()
    discussion.current_item = discussion.items.order_by("position").first()
    _save(discussion, acting_user, exclude=["team", "chair", "current_item"])
    record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_STARTED,
           object_type="discussion", object_id=discussion.pk)
    notices.status_on_commit(discussion)
    return discussion


@transaction.atomic
def do_move_to_item(*, acting_user, discussion: Discussion, item: AgendaItem) -> Discussion:
    """Make `item` the one the meeting is discussing now (everyone's page follows)."""
    discussion = _locked(discussion)
    _manager(acting_user, discussion)
    _require_running(discussion)
    item = discussion.items.filter(pk=item.pk).first()
    if item is None:
        raise ValidationError("Choose a case on this discussion's agenda.")
    if discussion.current_item_id != item.pk:
        discussion.current_item = item
        _save(discussion, acting_user, exclude=["team", "chair", "current_item"])
        record(actor=_actor(acting_user, discussion.team), action=AuditAction.DISCUSSION_MOVED,
               object_type="discussion", object_id=discussion.pk, case_id=item.case_id,
               reason=f"agenda item {item.position}")
        notices.agenda_on_commit(discussion)
    return discussion


# --- attendance ---------------------------------------------------------------------

@transaction.atomic
def do_join_discussion(*, acting_user, discussion: Discussion, channel_name: str) -> Attendance | None:
    """Record a connection to the room; the first one of a stretch starts an attendance
    row (and its audit entry). Only a scheduled or running discussion takes attendance.
    Under the discussion's lock, so two connections opened at once start one row."""
    discussion = _locked(discussion)
    if not policy.can(acting_user, Action.JOIN_DISCUSSION, discussion):
        raise NotFound("Discussion")
    if discussion.status not in (Discussion.Status.SCHEDULED, Discussion.Status.IN_PROGRESS):
        raise ValidationError(SIGNED_OFF if discussion.is_signed_off else CANCELLED)
    DiscussionPresence(discussion=discussion, user=acting_user, channel_name=channel_name).save()
    stint = Attendance.objects.filter(discussion=discussion, user=acting_user,
                                      left_at__isnull=True).first()
    if stint is not None:
        return stint
    membership = _team_membership(acting_user, discussion.team)
    stint = Attendance(
        discussion=discussion, user=acting_user,
        display_name=acting_user.get_full_name() or acting_user.get_username(),
        role_label=membership.get_role_display() if membership else "",
        agency_label=membership.agency.short_name if membership else "",
        was_invited=discussion.invitations.filter(user=acting_user).exists(),
    )
    _save(stint, acting_user, exclude=["discussion", "user"])
    record(actor=actor_for(acting_user, membership), action=AuditAction.DISCUSSION_JOINED,
           object_type="discussion", object_id=discussion.pk)
    return stint


@transaction.atomic
def do_leave_discussion(*, channel_name: str) -> None:
    """Forget a connection; the person's last one leaving ends their attendance stretch."""
    presence = DiscussionPresence.objects.select_related("user").filter(channel_name=channel_name).first()
    if presence is None:
        return
    acting_user = presence.user
    presence.delete()
    fresh = timezone.now() - PRESENCE_TTL
    if DiscussionPresence.objects.filter(discussion_id=presence.discussion_id, user=acting_user,
                                         seen_at__gte=fresh).exists():
        return
    for stint in Attendance.objects.filter(discussion_id=presence.discussion_id, user=acting_user,
                                           left_at__isnull=True):
        stint.left_at = timezone.now()
        _save(stint, acting_user, exclude=["discussion", "user"])
        record(actor=actor_for(acting_user), action=AuditAction.DISCUSSION_LEFT,
               object_type="discussion", object_id=presence.discussion_id)


def do_touch_presence(*, channel_name: str) -> None:
    """A heartbeat: keeps a connection counted as in the room (not a record)."""
    DiscussionPresence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


# --- the shared record --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SectionSave:
    """What became of one save of a section."""

    section: Section
    outcome: str  # "saved", "merged", "unchanged" or "kept"
    kept: KeptText | None = None


def _editor_access(acting_user, discussion: Discussion, item: AgendaItem) -> CaseAccess:
    """May write this item's record: a participant working on its case."""
    access = policy.discussion_case_access(acting_user, item.case)
    if (not policy.can(acting_user, Action.JOIN_DISCUSSION, discussion)
            or access is None or not access.can_contribute):
        raise NotFound("Discussion")
    return access


def _clean_text(text: str) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _write_section(acting_user, section: Section, text: str, access: CaseAccess, reason: str) -> None:
    section.text = text
    section.version += 1
    section.updated_by = acting_user
    section.updated_at = timezone.now()
    _save(section, acting_user, exclude=["item", "updated_by"])
    record(actor=access.actor, action=AuditAction.SECTION_EDITED, object_type="discussion_section",
           object_id=section.pk, case_id=section.item.case_id,
           reason=f"{section.kind} version {section.version}{reason}")
    notices.section_on_commit(section, acting_user)


def _base_text(section: Section, version: int | None) -> str | None:
    if version is None:
        return None
    if version == section.version:
        return section.text
    old = section.history.filter(version=version).order_by("-history_id").first()
    return old.text if old is not None else None


@transaction.atomic
def do_save_section(
    *, acting_user, section: Section, text: str, version: int | None, base_text: str | None = None,
) -> SectionSave:
    """Save a participant's text for a section.

    `version` is the section version the participant last had; `base_text` the text
    their edit started from (the browser sends it; a form save uses that version's
    text from history). If someone else saved meanwhile, both changes are merged where
    they touch different words; otherwise the participant's text is kept whole beside
    the section (a KeptText) and the section is left as the other person saved it."""
    discussion = _locked(section.item.discussion)
    section = Section.objects.select_for_update(no_key=True).select_related("item__case").get(pk=section.pk)
    access = _editor_access(acting_user, discussion, section.item)
    _require_running(discussion)
    text = _clean_text(text)
    if len(text) > SECTION_MAX_LENGTH:
        raise ValidationError({"text": f"A section must be {SECTION_MAX_LENGTH:,} characters or "
                                       f"fewer (this has {len(text):,})."})
    if text == section.text:
        return SectionSave(section, "unchanged")
    base = _clean_text(base_text) if base_text is not None else _base_text(section, version)
    if base == section.text:
        _write_section(acting_user, section, text, access, "")
        return SectionSave(section, "saved")
    merged = merge3(base, text, section.text) if base is not None else None
    if merged is not None and len(merged) <= SECTION_MAX_LENGTH:
        _write_section(acting_user, section, merged, access, ", merged with a change made meanwhile")
        return SectionSave(section, "merged")
    kept = KeptText(section=section, author=acting_user, text=text,
                    based_on_version=version or 0)
    _save(kept, acting_user, exclude=["section", "author", "resolved_by"])
    record(actor=access.actor, action=AuditAction.SECTION_TEXT_KEPT, object_type="kept_text",
           object_id=kept.pk, case_id=section.item.case_id,
           reason=f"{section.kind}: based on version {version}, section at {section.version}")
    notices.kept_on_commit(section)
    return SectionSave(section, "kept", kept)


@transaction.atomic
def do_resolve_kept_text(*, acting_user, kept: KeptText, add: bool) -> KeptText:
    """Add a kept text to the end of its section, or dismiss it (it stays in history)."""
    kept = KeptText.objects.select_related("section__item__discussion").get(pk=kept.pk)
    discussion = _locked(kept.section.item.discussion)
    kept = KeptText.objects.select_for_update(no_key=True).get(pk=kept.pk)
    section = (Section.objects.select_for_update(no_key=True).select_related("item__case")
               .get(pk=kept.section_id))
    access = _editor_access(acting_user, discussion, section.item)
    _require_running(discussion)
    if not kept.is_open:
        raise ValidationError("Someone has already dealt with this text.")
    if add:
        combined = f"{section.text.rstrip()}\n\n{kept.text}".strip() if section.text.strip() else kept.text
        if len(combined) > SECTION_MAX_LENGTH:
            raise ValidationError(
                f"Adding this text would make the section longer than {SECTION_MAX_LENGTH:,} "
                "characters. Shorten the section first, or copy what is needed from it.")
        _write_section(acting_user, section, combined, access, ", kept text added")
    kept.resolution = KeptText.Resolution.ADDED if add else KeptText.Resolution.DISMISSED
    kept.resolved_at, kept.resolved_by = timezone.now(), acting_user
    _save(kept, acting_user, exclude=["section", "author", "resolved_by"])
    record(actor=access.actor, action=AuditAction.KEPT_TEXT_RESOLVED, object_type="kept_text",
           object_id=kept.pk, case_id=section.item.case_id, reason=kept.resolution)
    notices.kept_on_commit(section)
    return kept


# --- actions ------------------------------------------------------------------------

def _action_errors(discussion: Discussion, case: Case, *, owner, due_on,
                   members: set[int] | None = None,
                   working: bool | None = None) -> dict[str, list[str]]:
    """What is wrong with an agreed action's owner and due date. `members` (the team's
    member ids) and `working` (whether the owner may work on `case`) may be passed
    in, decided for many actions at once; otherwise they are looked up."""
    errors: dict[str, list[str]] = {}
    if owner is None:
        errors["owner"] = ["Choose who will do this."]
    else:
        members = members if members is not None else {m.user_id for m in team_members(discussion.team)}
        name = owner.get_full_name() or owner.get_username()
        if owner.pk not in members:
            errors["owner"] = [f"{name} is not a member of {discussion.team.name}: choose a team member."]
        elif working is False or (working is None
                                  and policy.discussion_case_access(owner, case) is None):
            errors["owner"] = [f"{name} is not working on {case.reference}: choose someone who is."]
    if due_on is None:
        errors["due_on"] = ["Enter the date this is due by."]
    elif due_on < timezone.localdate():
        errors["due_on"] = ["The due date must be today or in the future."]
    return errors


@transaction.atomic
def do_add_action(*, acting_user, item: AgendaItem, description: str, owner,
                  due_on: datetime.date | None) -> AgreedAction:
    discussion = _locked(item.discussion)
    item = discussion.items.select_related("case").get(pk=item.pk)
    access = _editor_access(acting_user, discussion, item)
    _require_running(discussion)
    description = " ".join((description or "").split())
    errors = _action_errors(discussion, item.case, owner=owner, due_on=due_on)
    if not description:
        errors["description"] = ["Enter what needs to be done."]
    elif len(description) > ACTION_MAX_LENGTH:
        errors["description"] = [f"Describe the action in {ACTION_MAX_LENGTH} characters or fewer."]
    if item.actions.count() >= MAX_ACTIONS_PER_ITEM:
        errors.setdefault("description", []).append(
            f"A case can have {MAX_ACTIONS_PER_ITEM} actions at most in one discussion.")
    elif description and not errors and "\x00" not in description and item.actions.filter(
            description=description, owner=owner, due_on=due_on).exists():
        # The same form sent twice, or two people agreeing the same thing at once (the
        # discussion is locked): one task, not two on the owner's list. (A NUL is refused
        # by the field's validator when it is saved; PostgreSQL cannot be asked about one.)
        errors["description"] = ["This action is already agreed for this case, with the same "
                                 "owner and date."]
    if errors:
        raise ValidationError(errors)
    agreed = AgreedAction(item=item, description=description, owner=owner, due_on=due_on,
                          created_by=acting_user)
    _save(agreed, acting_user, exclude=["item", "owner", "created_by", "completed_by"])
    record(actor=access.actor, action=AuditAction.ACTION_AGREED, object_type="action",
           object_id=agreed.pk, case_id=item.case_id)
    notices.actions_on_commit(item)
    return agreed


@transaction.atomic
def do_remove_action(*, acting_user, agreed: AgreedAction) -> None:
    discussion = _locked(agreed.item.discussion)
    agreed = AgreedAction.objects.select_related("item__case").get(pk=agreed.pk)
    access = _editor_access(acting_user, discussion, agreed.item)
    _require_running(discussion)
    item = agreed.item
    agreed._history_user = acting_user
    agreed_id = agreed.pk
    agreed.delete()
    record(actor=access.actor, action=AuditAction.ACTION_REMOVED, object_type="action",
           object_id=agreed_id, case_id=item.case_id)
    notices.actions_on_commit(item)


# --- sign-off -----------------------------------------------------------------------

def _owners_working(items: list[AgendaItem]) -> dict[tuple[int, int], bool]:
    """Whether each agreed action's owner may work on its item's case, keyed by
    (owner id, case id): one batch of the policy per owner, however many actions."""
    by_owner: dict[int, tuple[object, list[Case]]] = {}
    for item in items:
        for agreed in item.actions.all():
            by_owner.setdefault(agreed.owner_id, (agreed.owner, []))[1].append(item.case)
    return {(owner_id, case_id): access is not None
            for owner_id, (owner, cases) in by_owner.items()
            for case_id, access in policy.discussion_case_accesses(owner, cases).items()}


def was_present(discussion: Discussion, stint: Attendance) -> bool:
    """Whether a stretch in the room overlaps the meeting itself: opening the room
    before the start and leaving before it is not attending."""
    return discussion.started_at is not None and (
        stint.left_at is None or stint.left_at > discussion.started_at)


def compose_record(discussion: Discussion, item: AgendaItem, attendees: list[Attendance]) -> str:
    """The note filed into the case: the record's four sections, the actions, who
    was there."""
    sections = {s.kind: s.text.strip() for s in item.sections.all()}
    lines = [
        f"{discussion.title}, {timezone.localtime(discussion.started_at):%d %B %Y %H:%M}, "
        f"chaired by {discussion.chair.get_full_name() or discussion.chair.get_username()}.",
    ]
    # The decision first: it is what a reader of the case's notes needs at a glance.
    order = [Section.Kind.DECISION, Section.Kind.WORRIES, Section.Kind.WORKING_WELL,
             Section.Kind.NEEDS]
    for kind in order:
        lines += ["", kind.label, sections.get(kind) or "Nothing recorded."]
    actions = list(item.actions.select_related("owner").order_by("due_on", "pk"))
    lines += ["", "Actions"]
    lines += [f"- {a.description} (owner: {a.owner.get_full_name() or a.owner.get_username()}; "
              f"due {a.due_on:%d %B %Y})" for a in actions] or ["None agreed."]
    present = sorted({(a.display_name, a.role_label, a.agency_label)
                      for a in attendees if was_present(discussion, a)})
    if present:
        lines += ["", "Present: " + "; ".join(
            f"{name} ({', '.join(p for p in (role, agency) if p)})" for name, role, agency in present)
            + "."]
    return "\n".join(lines)


@transaction.atomic
def do_sign_off(*, acting_user, discussion: Discussion) -> Discussion:
    """Lock the record and file it: a finalised "group case discussion" note in each
    case (live in those cases' rooms), each action a task on its owner's list.
    Refused, with every problem named and nothing changed, if any item is not ready."""
    discussion = _locked(discussion)
    _manager(acting_user, discussion)
    _require_running(discussion)
    items = list(discussion.items.select_related("case").order_by("position")
                 .prefetch_related("sections", "actions__owner", "sections__kept_texts"))
    attendees = list(discussion.attendance.all())
    members = {m.user_id for m in team_members(discussion.team)}
    errors: list[str] = []
    bodies: dict[int, str] = {}
    accesses = selectors.item_accesses(acting_user, items)
    working = _owners_working(items)
    for item in items:
        ref = item.case.reference
        access = accesses[item.pk]
        if access is None or not access.can_contribute or access.membership is None:
            errors.append(f"{ref}: you can no longer add to this case, so its record cannot be filed.")
            continue
        if not item.case.is_open:
            errors.append(f"{ref}: the case has been closed, so its record cannot be filed.")
        sections = {s.kind: s for s in item.sections.all()}
        if not sections[Section.Kind.DECISION].text.strip():
            errors.append(f"{ref}: record the decision before signing off (or, if the "
                          "discussion did not reach this case, take it off the agenda).")
        for section in sections.values():
            if any(k.is_open for k in section.kept_texts.all()):
                errors.append(f"{ref}: '{section.get_kind_display()}' has kept text to add or "
                              "dismiss before signing off.")
        for agreed in item.actions.all():
            problems = _action_errors(discussion, item.case, owner=agreed.owner,
                                      due_on=agreed.due_on, members=members,
                                      working=working[agreed.owner_id, item.case_id])
            errors += [f"{ref}: action '{agreed.description[:60]}': {message}"
                       for messages in problems.values() for message in messages]
        bodies[item.pk] = compose_record(discussion, item, attendees)
        if len(bodies[item.pk]) > settings.NOTE_BODY_MAX_LENGTH:
            errors.append(f"{ref}: the record is {len(bodies[item.pk]):,} characters, more than "
                          f"a note can hold ({settings.NOTE_BODY_MAX_LENGTH:,}). Shorten a section.")
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    entries = []
    for item in items:
        note = do_create_note(
            acting_user=acting_user, case=item.case, note_type=CaseNote.NoteType.GROUP_CASE_DISCUSSION,
            occurred_at=discussion.started_at, body=bodies[item.pk], finalise=True,
            people=list(item.case.people.all()),  # about the whole family (filters, SARs)
        )
        item.filed_note = note
        item._history_user = acting_user
        item.save(update_fields=["filed_note"])
        for agreed in item.actions.all():
            agreed.state = AgreedAction.State.OPEN
            _save(agreed, acting_user, exclude=["item", "owner", "created_by", "completed_by"])
        entries.append(Pending(actor=accesses[item.pk].actor, action=AuditAction.DISCUSSION_SIGNED_OFF,
            object_type="discussion", object_id=discussion.pk, case_id=item.case_id,
            reason=f"filed as note {note.pk}"))
    for stint in discussion.attendance.filter(left_at__isnull=True):
        stint.left_at = now
        _save(stint, acting_user, exclude=["discussion", "user"])
    discussion.status = Discussion.Status.SIGNED_OFF
    discussion.signed_off_at, discussion.signed_off_by = now, acting_user
    _save(discussion, acting_user, exclude=["team", "chair", "current_item", "signed_off_by"])
    record_many(entries)
    notices.status_on_commit(discussion)
    return discussion


@transaction.atomic
def do_complete_action(*, acting_user, agreed: AgreedAction, outcome: str = "") -> AgreedAction:
    """Mark a task done; recorded in the case (its actions list, history and audit)."""
    agreed, access = policy.access_agreed_action(acting_user, agreed.pk)
    agreed = (AgreedAction.objects.select_for_update(no_key=True).select_related("item__case")
              .get(pk=agreed.pk))
    outcome = " ".join((outcome or "").split())
    if agreed.state == AgreedAction.State.DONE:
        raise ValidationError("This action has already been marked as done.")
    if len(outcome) > 500:
        raise ValidationError({"outcome": "Describe what was done in 500 characters or fewer."})
    agreed.state = AgreedAction.State.DONE
    agreed.completed_at, agreed.completed_by, agreed.outcome = timezone.now(), acting_user, outcome
    _save(agreed, acting_user, exclude=["item", "owner", "created_by", "completed_by"])
    record(actor=access.actor, action=AuditAction.ACTION_COMPLETED, object_type="action",
           object_id=agreed.pk, case_id=agreed.item.case_id)
    _publish(agreed.item.case_id, CaseEvent.Kind.CASE_UPDATED)
    return agreed
