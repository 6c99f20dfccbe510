"""Reads for group case discussions, each through the permission policy.

Every agenda item is shown to a participant in full only if they may see its case
(policy.discussion_case_access); otherwise its reference alone."""

import datetime
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch
from django.utils import dateformat, timezone

from audit.actions import Pending, record, record_many
from audit.models import AuditAction
from casenotes.permissions import Action, CaseAccess, NoteLevel, policy
from discussions.models import AgendaItem, AgreedAction, Discussion, KeptText, Section
from teams.models import Team
from teams.selectors import actor_for, team_members


@dataclass
class ItemView:
    item: AgendaItem
    access: CaseAccess | None
    can_edit: bool
    sections: list[Section] = field(default_factory=list)
    kept: dict[str, list[KeptText]] = field(default_factory=dict)
    actions: list[AgreedAction] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        return self.access is not None


def item_accesses(user, items) -> dict[int, CaseAccess | None]:
    """Each agenda item's case access for `user`, by item id (None: reference only),
    decided in one batch however many items (policy.discussion_case_accesses)."""
    items = list(items)
    accesses = policy.discussion_case_accesses(user, [item.case for item in items])
    return {item.pk: accesses[item.case_id] for item in items}


def _items(discussion: Discussion):
    open_kept = KeptText.objects.filter(resolution="").select_related("author")
    return (discussion.items.select_related("case__allocated_team", "case__lead_practitioner",
                                            "filed_note")
            .prefetch_related("case__people",
                              Prefetch("sections", Section.objects.select_related("updated_by")),
                              Prefetch("sections__kept_texts", open_kept),
                              Prefetch("actions", AgreedAction.objects.select_related("owner")
                                       .order_by("due_on", "pk")))
            .order_by("position"))


def room(user, discussion: Discussion, *, audit: bool = True) -> dict:
    """What the room page shows this participant; the reads of case records are
    audited (one entry per case shown)."""
    running = discussion.is_running
    views: list[ItemView] = []
    items = list(_items(discussion))
    accesses = item_accesses(user, items)
    for item in items:
        access = accesses[item.pk]
        view = ItemView(item=item, access=access,
                        can_edit=bool(access and access.can_contribute and running))
        if access is not None:
            view.sections = sorted(item.sections.all(), key=lambda s: Section.Kind.values.index(s.kind))
            view.kept = {s.kind: list(s.kept_texts.all()) for s in view.sections}
            view.actions = list(item.actions.all())
        views.append(view)
    if audit:
        record_many([Pending(actor=v.access.actor, action=AuditAction.DISCUSSION_CASE_VIEWED,
                             object_type="discussion", object_id=discussion.pk,
                             case_id=v.item.case_id) for v in views if v.visible])
    return {
        "discussion": discussion, "items": views,
        "current": next((v for v in views if v.item.pk == discussion.current_item_id), None),
        "can_run": policy.can(user, Action.RUN_DISCUSSION, discussion),
        "attendance": attendance(discussion),
        "invitees": list(get_user_model().objects.filter(
            pk__in=discussion.invitations.values("user_id")).order_by("first_name", "last_name")),
        "owner_candidates": owner_candidates(discussion.team),
    }


@dataclass
class Attendee:
    """One person's time in the room: each stretch from joining to leaving, in order."""

    display_name: str
    role_label: str
    agency_label: str
    was_invited: bool
    stretches: list = field(default_factory=list)  # (joined_at, left_at or None)


#: Time out of the room that does not break a stretch: a reload, a dropped connection,
#: a second tab closed.
ATTENDANCE_GAP = datetime.timedelta(minutes=5)


def attendance(discussion: Discussion) -> list[Attendee]:
    """Who has been in the room, once each, in the order they first joined, with their
    stretches in it: overlapping ones (two tabs) and ones apart by less than
    `ATTENDANCE_GAP` (a reload) are one. Once the meeting has started, only those whose
    time in the room overlaps it are listed (`was_present`): reading the agenda
    beforehand is not attending."""
    from discussions.actions import was_present

    people: dict[int, Attendee] = {}
    for stint in discussion.attendance.order_by("joined_at", "pk"):
        if discussion.started_at is not None and not was_present(discussion, stint):
            continue
        person = people.setdefault(stint.user_id, Attendee(
            stint.display_name, stint.role_label, stint.agency_label, stint.was_invited))
        person.was_invited |= stint.was_invited
        if person.stretches:
            joined, left = person.stretches[-1]
            if left is None or stint.joined_at - left <= ATTENDANCE_GAP:
                # Still in the room (None: open) until the later of the two ends.
                ends = None if left is None or stint.left_at is None else max(left, stint.left_at)
                person.stretches[-1] = (joined, ends)
                continue
        person.stretches.append((stint.joined_at, stint.left_at))
    return list(people.values())


def owner_candidates(team: Team) -> list:
    return [m.user for m in team_members(team)]


def snapshot(discussion: Discussion, visible_item_ids: set[int]) -> dict:
    """The record as it stands, for a (re)connecting participant: the text and version
    of every section of the items they may see, and the agenda position."""
    from discussions import notices

    items = {}
    for item in _items(discussion).filter(pk__in=visible_item_ids):
        items[str(item.pk)] = {
            "sections": {s.kind: {"text": s.text, "version": s.version} for s in item.sections.all()},
            "actions_html": notices.render_actions(item),
            "kept_html": {s.kind: notices.render_kept(s) for s in item.sections.all()},
        }
    return {"type": "state", "status": discussion.status, "current": discussion.current_item_id,
            "items": items}


def schedule_form(user, team: Team, cases) -> dict:
    """The schedule form lists the open cases `user` may see, by family name and
    reference, to choose the agenda from: an audited read, like the caseload."""
    shown = sorted(cases.values_list("pk", flat=True))
    record(actor=actor_for(user), action=AuditAction.CASE_FORM_VIEWED, object_type="team",
           object_id=team.pk, reason=f"discussion schedule form: {len(shown)} cases listed; "
                                     f"cases shown {shown[:40]}")
    return {"team": team}


def agenda_cases(user):
    """The open cases `user` works on (may add to), by family name: what an agenda can
    be chosen from. A case they may only read (a team's read-only hand-over) or opened
    in an emergency is not offered, as the actions would refuse it (three queries
    however many cases, the policy's `discussion_case_accesses`)."""
    from casenotes.models import Case

    visible = list(policy.visible_cases(user, Case.objects.filter(status=Case.Status.OPEN)))
    accesses = policy.discussion_case_accesses(user, visible)
    workable = [case.pk for case in visible
                if accesses.get(case.pk) is not None and accesses[case.pk].can_contribute]
    return Case.objects.filter(pk__in=workable).order_by("family_name", "reference")


def agenda_candidates(user, discussion: Discussion) -> list:
    """The open cases `user` works on that are not yet on the agenda, by family name,
    to add one: an audited read, like the schedule form."""
    on_agenda = discussion.items.values("case_id")
    cases = list(agenda_cases(user).exclude(pk__in=on_agenda))
    shown = [c.pk for c in cases]
    record(actor=actor_for(user), action=AuditAction.CASE_FORM_VIEWED,
           object_type="discussion", object_id=discussion.pk,
           reason=f"agenda add form: {len(shown)} cases listed; cases shown {shown[:40]}")
    return cases


def team_discussions(team: Team) -> dict:
    """A team's discussions: those to come or running, and the recent ones."""
    discussions = team.discussions.select_related("chair").order_by("scheduled_for", "pk")
    return {
        "upcoming": list(discussions.filter(status__in=[Discussion.Status.SCHEDULED,
                                                        Discussion.Status.IN_PROGRESS])),
        "recent": list(discussions.filter(status=Discussion.Status.SIGNED_OFF)
                       .order_by("-signed_off_at")[:10]),
    }


def coming_up(user) -> list[Discussion]:
    """The discussions to come or running in the teams `user` works in, running first,
    then by time (for their caseload)."""
    discussions = policy.joinable_discussions(user, Discussion.objects.filter(
        status__in=[Discussion.Status.IN_PROGRESS, Discussion.Status.SCHEDULED]))
    by_time = discussions.select_related("team").order_by("scheduled_for", "pk")
    return sorted(by_time, key=lambda d: d.status != Discussion.Status.IN_PROGRESS)  # stable


@dataclass(frozen=True)
class Task:
    action: AgreedAction
    visible: bool  # the owner may still see the case (else only its reference is shown)


def my_actions(user) -> dict:
    """The user's tasks from signed-off discussions: to do (overdue first) and recently
    done. The list itself is an audited read of case content."""
    rows = list(AgreedAction.objects.filter(owner=user).exclude(state=AgreedAction.State.PROPOSED)
                .select_related("item__case", "item__discussion", "completed_by")
                .order_by("due_on", "pk"))
    visible_ids = set(policy.visible_cases(user).filter(
        pk__in={a.item.case_id for a in rows}).values_list("pk", flat=True))
    tasks = [Task(a, a.item.case_id in visible_ids) for a in rows]
    todo = [t for t in tasks if t.action.state == AgreedAction.State.OPEN]
    done = sorted((t for t in tasks if t.action.state == AgreedAction.State.DONE),
                  key=lambda t: t.action.completed_at, reverse=True)[:20]
    actor = actor_for(user)
    record_many([Pending(actor=actor, action=AuditAction.ACTIONS_VIEWED, object_type="case",
                         object_id=case_id, case_id=case_id) for case_id in sorted(visible_ids)]
                or [Pending(actor=actor, action=AuditAction.ACTIONS_VIEWED, object_type="",
                            object_id="", case_id=None)])
    return {"todo": todo, "done": done, "today": timezone.localdate(),
            "overdue": sum(1 for t in todo if t.action.is_overdue)}


def case_actions(access: CaseAccess) -> list[AgreedAction]:
    """The actions agreed for a case in signed-off discussions (standard content)."""
    return list(AgreedAction.objects.filter(item__case=access.case)
                .exclude(state=AgreedAction.State.PROPOSED)
                .select_related("owner", "completed_by", "item__discussion")
                .order_by("state", "due_on", "pk"))


@dataclass(frozen=True)
class FiledRecord:
    """A signed-off discussion's record as filed into a case (a finalised note)."""

    item: AgendaItem
    #: Signed off after the family's plan was last changed (or before it had one).
    newer: bool
    #: Addenda added to the filed note since (corrections the plan should not miss).
    addenda: int

    @property
    def discussion(self) -> Discussion:
        return self.item.discussion

    @property
    def note(self):
        return self.item.filed_note

    @property
    def held_on(self) -> datetime.date:
        return timezone.localdate(self.discussion.started_at)

    @property
    def heading(self) -> str:
        """The line the record's text is headed with in each part of the plan."""
        return f"From the group case discussion on {dateformat.format(self.held_on, 'j F Y')}:"


def latest_record(access: CaseAccess, plan) -> FiledRecord | None:
    """The newest discussion record filed into the case, if the viewer may read its
    note in full: its discussion and date, how many addenda its note has, and whether
    it is newer than the family's `plan` (a CasePlan or None); not its text
    (`add_record_to_plan` reads that)."""
    item = (AgendaItem.objects.filter(case=access.case, filed_note__isnull=False)
            .select_related("discussion", "filed_note")
            .annotate(addenda=Count("filed_note__addenda"))
            .order_by("-discussion__signed_off_at", "-pk").first())
    if item is None or policy.note_level(access, item.filed_note) != NoteLevel.FULL:
        return None
    newer = plan is None or plan.updated_at is None or (
        item.discussion.signed_off_at > plan.updated_at)
    return FiledRecord(item, newer, item.addenda)


def add_record_to_plan(access: CaseAccess, filed: FiledRecord, parts: dict) -> list[str]:
    """Add what the record says below each part of the family's plan in `parts` (form
    values by part name, changed in place): worries; what is working well; the
    decision, what needs to happen and the actions agreed. Each is headed with the
    discussion's date, and a part already holding that heading is left as it is (the
    team may have changed the text since). The names of the parts added to. The record's
    text is then shown, so that is audited as a read of its note; adding nothing reads
    nothing."""
    if all(filed.heading in str(parts.get(name) or "") for name in PLAN_PARTS):
        return []
    item = filed.item
    sections = {s.kind: s.text.strip() for s in item.sections.all()}
    agreed = (item.actions.exclude(state=AgreedAction.State.PROPOSED).select_related("owner")
              .order_by("due_on", "pk"))
    steps = [f"Decision: {sections[Section.Kind.DECISION]}"] if sections.get(
        Section.Kind.DECISION) else []
    steps += [sections[Section.Kind.NEEDS]] if sections.get(Section.Kind.NEEDS) else []
    steps += [f"- {a.description} ({a.owner.get_full_name() or a.owner.get_username()}, "
              f"by {dateformat.format(a.due_on, 'j F Y')})" for a in agreed]
    texts = {"worries": sections.get(Section.Kind.WORRIES, ""),
             "strengths": sections.get(Section.Kind.WORKING_WELL, ""),
             "next_steps": "\n".join(steps)}
    added = []
    for name, text in texts.items():
        current = str(parts.get(name) or "").replace("\r\n", "\n").rstrip()
        if text and filed.heading not in current:
            block = f"{filed.heading}\n{text}"
            parts[name] = f"{current}\n\n{block}" if current else block
            added.append(name)
    if added:
        record(actor=access.actor, action=AuditAction.NOTE_VIEWED, object_type="note",
               object_id=filed.note.pk, case_id=access.case.pk, reason="plan form")
    return added


#: The parts of the family's plan a discussion's record has something for.
PLAN_PARTS = ("worries", "strengths", "next_steps")


_SECTION_FIELDS = {"text": "Text"}
_ACTION_FIELDS = {"description": "What", "owner": "Owner", "due_on": "Due", "state": "Status",
                  "outcome": "What was done"}
_KEPT_FIELDS = {"text": "Kept text", "resolution": "Resolved"}


def record_history(user, discussion: Discussion) -> dict:
    """Every version of every section, action and kept text of the agenda items whose
    case `user` may see, newest first, with who changed what; an audited read."""
    from casenotes.selectors import versions_with_changes

    entries, shown = [], []
    items = list(discussion.items.select_related("case").order_by("position"))
    accesses = item_accesses(user, items)
    for item in items:
        access = accesses[item.pk]
        if access is None:
            continue
        shown.append((item, access))
        where = f"{item.case.reference}: "
        for section in item.sections.all():
            entries += versions_with_changes(section.history.all(), _SECTION_FIELDS,
                                             lambda v, w=where, s=section: w + s.get_kind_display())
            for kept in section.kept_texts.all():
                entries += versions_with_changes(kept.history.all(), _KEPT_FIELDS,
                                                 lambda v, w=where, s=section: w + "kept beside "
                                                 + s.get_kind_display())
        actions = AgreedAction.history.filter(item_id=item.pk).values_list("id", flat=True).distinct()
        for action_id in actions:
            entries += versions_with_changes(AgreedAction.history.filter(id=action_id), _ACTION_FIELDS,
                                             lambda v, w=where: w + "action")
    entries.sort(key=lambda e: (e["version"].history_date, e["version"].history_id), reverse=True)
    record_many([Pending(actor=access.actor, action=AuditAction.CASE_HISTORY_VIEWED,
                         object_type="discussion", object_id=discussion.pk, case_id=item.case_id)
                 for item, access in shown])
    return {"entries": entries, "hidden": len(shown) < discussion.items.count()}
