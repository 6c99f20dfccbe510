"""The discussion actions: scheduling, the live agenda, per-section versions and
conflicts, actions, sign-off filing into each case, tasks, and their audit entries.
Every refusal is checked to change nothing."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from casenotes.actions import do_add_keyworker, do_remove_keyworker
from casenotes.models import CaseEvent, CaseNote
from casenotes.permissions import Action, NotFound, policy
from discussions import actions, selectors
from discussions.models import AgendaItem, AgreedAction, Attendance, Discussion, KeptText, Section
from teams.actions import do_end_membership
from teams.models import Role
from tests.discussions.conftest import schedule

TODAY = timezone.localdate


def entries(action, **filters):
    return list(AuditEvent.objects.filter(action=action, **filters))


def section(discussion, kind="decision", position=1) -> Section:
    return Section.objects.get(item__discussion=discussion, item__position=position, kind=kind)


def started(world, **kw) -> Discussion:
    discussion = schedule(world, **kw)
    return actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)


def agree(world, discussion, *, owner=None, due=None, description="Visit the children at home"):
    item = discussion.items.get(position=1)
    return actions.do_add_action(acting_user=world.team_manager, item=item, description=description,
                                 owner=owner or world.social_worker, due_on=due or TODAY())


def ready(world, discussion):
    actions.do_save_section(acting_user=world.team_manager, section=section(discussion),
                            text="Remain on the child protection plan.", version=1)


def locality_case_on_agenda(world):
    """The FS manager as keyworker on the locality team's case, so it can be discussed;
    FS colleagues are not working on it."""
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    return started(world, cases=[world.case, world.other_case])


# --- scheduling -----------------------------------------------------------------------

def test_scheduling_makes_the_agenda_in_order_with_four_sections_each_invitees_history_and_audit(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    invitees = [world.social_worker, world.user(Role.PROBATION_OFFICER)]
    discussion = schedule(world, cases=[world.other_case, world.case], invitees=invitees)
    items = list(discussion.items.order_by("position"))
    assert [i.case for i in items] == [world.other_case, world.case]
    assert [i.position for i in items] == [1, 2]
    for item in items:
        assert sorted(item.sections.values_list("kind", flat=True)) == sorted(Section.Kind.values)
        assert item.history.get().history_user == world.team_manager
    assert set(discussion.invitees.all()) == set(invitees)
    assert discussion.status == Discussion.Status.SCHEDULED and discussion.chair == world.team_manager
    assert discussion.history.get().history_user == world.team_manager
    scheduled = entries(AuditAction.DISCUSSION_SCHEDULED, object_id=str(discussion.pk))
    assert {e.case_id for e in scheduled} == {world.case.pk, world.other_case.pk}


@pytest.mark.parametrize("change, field, message", [
    (dict(cases=[]), "cases", "Choose at least one case"),
    (dict(when="yesterday"), "scheduled_for", "today or later"),
    (dict(when=None), "scheduled_for", "Enter the date and time"),
    (dict(invitees="locality"), "invitees", "Invite members of"),
    (dict(cases="locality"), "cases", "not working on it"),
])
def test_scheduling_refuses_bad_input_with_a_message_and_creates_nothing(world, change, field, message):
    kw = dict(team=world.fs_team, title="", cases=[world.case], invitees=[world.social_worker],
              scheduled_for=timezone.now() + datetime.timedelta(hours=2))
    if change.get("cases") == "locality":
        kw["cases"] = [world.other_case]
    elif "cases" in change:
        kw["cases"] = change["cases"]
    if change.get("invitees") == "locality":
        kw["invitees"] = [world.locality_users[Role.SOCIAL_WORKER]]
    if "when" in change:
        kw["scheduled_for"] = (timezone.now() - datetime.timedelta(days=1)
                               if change["when"] == "yesterday" else None)
    with pytest.raises(ValidationError) as refused:
        actions.do_schedule_discussion(acting_user=world.team_manager, **kw)
    assert any(message in m for m in refused.value.message_dict[field])
    assert not Discussion.objects.exists() and not AgendaItem.objects.exists()


def test_only_a_manager_of_the_team_may_schedule_or_run_a_discussion(world):
    with pytest.raises(NotFound):
        schedule(world, manager=world.social_worker)
    with pytest.raises(NotFound):
        schedule(world, manager=world.locality_users[Role.TEAM_MANAGER])
    discussion = schedule(world)
    for outsider in (world.social_worker, world.locality_users[Role.TEAM_MANAGER]):
        with pytest.raises(NotFound):
            actions.do_start_discussion(acting_user=outsider, discussion=discussion)
    # The team's other manager may run it.
    actions.do_start_discussion(acting_user=world.user(Role.TEAM_MANAGER, 1), discussion=discussion)


def test_the_agenda_can_be_reordered_added_to_and_trimmed_before_the_start_only(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    manager = world.team_manager
    discussion = schedule(world)
    added = actions.do_add_agenda_case(acting_user=manager, discussion=discussion, case=world.other_case)
    assert added.position == 2
    with pytest.raises(ValidationError, match="already on the agenda"):
        actions.do_add_agenda_case(acting_user=manager, discussion=discussion, case=world.case)
    actions.do_move_agenda_item(acting_user=manager, item=added, up=True)
    assert list(discussion.items.order_by("position").values_list("case", flat=True)) == [
        world.other_case.pk, world.case.pk]
    actions.do_remove_agenda_item(acting_user=manager, item=discussion.items.get(case=world.case))
    assert list(discussion.items.values_list("case", "position")) == [(world.other_case.pk, 1)]
    with pytest.raises(ValidationError, match="at least one case"):
        actions.do_remove_agenda_item(acting_user=manager, item=discussion.items.get())
    assert len(entries(AuditAction.DISCUSSION_CHANGED, object_id=str(discussion.pk))) == 3
    actions.do_start_discussion(acting_user=manager, discussion=discussion)
    with pytest.raises(ValidationError, match="before the discussion starts"):
        actions.do_add_agenda_case(acting_user=manager, discussion=discussion, case=world.case)


# --- running --------------------------------------------------------------------------

def test_starting_opens_the_first_item_and_moving_changes_the_current_item_audited(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = started(world, cases=[world.case, world.other_case])
    first, second = discussion.items.order_by("position")
    assert discussion.status == Discussion.Status.IN_PROGRESS and discussion.started_at
    assert discussion.current_item == first
    with pytest.raises(ValidationError, match="already started"):
        actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)
    actions.do_move_to_item(acting_user=world.team_manager, discussion=discussion, item=second)
    discussion.refresh_from_db()
    assert discussion.current_item == second
    assert entries(AuditAction.DISCUSSION_STARTED, object_id=str(discussion.pk))
    moved = entries(AuditAction.DISCUSSION_MOVED, object_id=str(discussion.pk))
    assert [e.case_id for e in moved] == [world.other_case.pk]
    other = schedule(world)
    with pytest.raises(ValidationError, match="on this discussion's agenda"):
        actions.do_move_to_item(acting_user=world.team_manager, discussion=discussion,
                                item=other.items.get())


def test_joining_records_attendance_once_per_stretch_and_leaving_ends_it(world):
    discussion = started(world, invitees=[world.social_worker])
    sw, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    actions.do_join_discussion(acting_user=sw, discussion=discussion, channel_name="a")
    actions.do_join_discussion(acting_user=sw, discussion=discussion, channel_name="b")
    actions.do_join_discussion(acting_user=probation, discussion=discussion, channel_name="c")
    stints = {a.user: a for a in Attendance.objects.filter(discussion=discussion)}
    assert set(stints) == {sw, probation}
    assert stints[sw].was_invited and not stints[probation].was_invited
    assert stints[probation].role_label == "Probation officer"
    assert stints[probation].agency_label == world.agency_of(probation).short_name
    actions.do_leave_discussion(channel_name="a")
    assert Attendance.objects.get(user=sw).left_at is None  # another tab is still open
    actions.do_leave_discussion(channel_name="b")
    assert Attendance.objects.get(user=sw).left_at is not None
    assert len(entries(AuditAction.DISCUSSION_JOINED, actor_id=sw.pk)) == 1
    assert len(entries(AuditAction.DISCUSSION_LEFT, actor_id=sw.pk)) == 1


@pytest.mark.requires_postgres
def test_joining_looks_for_an_open_attendance_under_the_discussions_lock(world):
    """Two tabs opened at once each look for the person's open attendance and, finding
    none, would each start one: the look is made under the discussion's lock."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    discussion = started(world)
    with CaptureQueriesContext(connection) as queries:
        actions.do_join_discussion(acting_user=world.social_worker, discussion=discussion,
                                   channel_name="a")
    sql = [q["sql"] for q in queries.captured_queries]
    locked = next(i for i, q in enumerate(sql)
                  if 'FROM "discussions_discussion"' in q and "FOR NO KEY UPDATE" in q)
    looked = next(i for i, q in enumerate(sql) if 'FROM "discussions_attendance"' in q)
    assert locked < looked


def test_joining_a_discussion_of_another_team_is_refused(world):
    discussion = started(world)
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    with pytest.raises(NotFound):
        actions.do_join_discussion(acting_user=outsider, discussion=discussion, channel_name="x")
    with pytest.raises(NotFound):
        policy.access_discussion(outsider, discussion.pk)
    assert not Attendance.objects.exists()
    assert entries(AuditAction.ACCESS_DENIED, actor_id=outsider.pk, object_type="discussion")


# --- the shared record ----------------------------------------------------------------

def test_each_save_is_a_new_version_kept_in_history_and_audited(world):
    discussion = started(world)
    target = section(discussion, "worries")
    for number, text in enumerate(["Dad's drinking.", "Dad's drinking at weekends."], start=2):
        result = actions.do_save_section(acting_user=world.social_worker, section=target,
                                         text=text, version=number - 1)
        assert result.outcome == "saved" and result.section.version == number
    target.refresh_from_db()
    assert target.text == "Dad's drinking at weekends." and target.updated_by == world.social_worker
    versions = list(target.history.order_by("history_date").values_list("version", "text"))
    assert versions == [(1, ""), (2, "Dad's drinking."), (3, "Dad's drinking at weekends.")]
    assert all(h.history_user == world.social_worker for h in target.history.filter(version__gt=1))
    assert len(entries(AuditAction.SECTION_EDITED, object_id=str(target.pk),
                       case_id=world.case.pk)) == 2


def test_a_save_from_an_old_version_changing_other_words_is_merged(world):
    discussion = started(world)
    target = section(discussion, "working_well")
    base = "Mum takes the children to school. Grandma helps at weekends."
    actions.do_save_section(acting_user=world.social_worker, section=target, text=base, version=1)
    actions.do_save_section(acting_user=world.social_worker, section=target, version=2,
                            text=base.replace("Mum", "Mum always"))
    result = actions.do_save_section(
        acting_user=world.user(Role.PROBATION_OFFICER), section=target, version=2,
        text=base.replace("weekends", "weekends and after school"))
    assert result.outcome == "merged"
    assert result.section.text == ("Mum always takes the children to school. "
                                   "Grandma helps at weekends and after school.")
    assert not KeptText.objects.exists()


def test_a_clashing_save_is_kept_whole_beside_the_section_and_the_section_is_not_overwritten(world):
    discussion = started(world)
    target = section(discussion, "needs")
    actions.do_save_section(acting_user=world.social_worker, section=target, text="A review.", version=1)
    probation = world.user(Role.PROBATION_OFFICER)
    result = actions.do_save_section(acting_user=probation, section=target, version=1,
                                     base_text="", text="A safety plan by Friday.")
    assert result.outcome == "kept"
    target.refresh_from_db()
    assert target.text == "A review." and target.version == 2
    kept = KeptText.objects.get()
    assert (kept.text, kept.author, kept.based_on_version) == ("A safety plan by Friday.", probation, 1)
    assert entries(AuditAction.SECTION_TEXT_KEPT, object_id=str(kept.pk), case_id=world.case.pk)
    # Resolving: added to the end of the section (a new version), audited.
    actions.do_resolve_kept_text(acting_user=world.social_worker, kept=kept, add=True)
    target.refresh_from_db()
    assert target.text == "A review.\n\nA safety plan by Friday." and target.version == 3
    kept.refresh_from_db()
    assert kept.resolution == KeptText.Resolution.ADDED and kept.resolved_by == world.social_worker
    with pytest.raises(ValidationError, match="already dealt with"):
        actions.do_resolve_kept_text(acting_user=world.social_worker, kept=kept, add=False)
    assert entries(AuditAction.KEPT_TEXT_RESOLVED, object_id=str(kept.pk))


def test_saving_the_same_text_writes_nothing(world):
    discussion = started(world)
    target = section(discussion)
    result = actions.do_save_section(acting_user=world.social_worker, section=target, text="", version=1)
    assert result.outcome == "unchanged" and target.history.count() == 1
    assert not entries(AuditAction.SECTION_EDITED)


@pytest.mark.parametrize("when, message", [
    ("scheduled", "has not started"),
    ("signed_off", "has been signed off"),
])
def test_the_record_cannot_be_edited_before_the_start_or_after_sign_off(world, when, message):
    discussion = schedule(world)
    if when == "signed_off":
        actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)
        ready(world, discussion)
        actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    target = section(discussion, "worries")
    before = (target.text, target.version, target.history.count())
    with pytest.raises(ValidationError, match=message):
        actions.do_save_section(acting_user=world.social_worker, section=target,
                                text="Typed too late.", version=target.version)
    target.refresh_from_db()
    assert (target.text, target.version, target.history.count()) == before
    assert not KeptText.objects.exists()


def test_an_overlong_section_is_refused_and_nothing_changes(world):
    discussion = started(world)
    target = section(discussion)
    with pytest.raises(ValidationError) as refused:
        actions.do_save_section(acting_user=world.social_worker, section=target,
                                text="x" * 4001, version=1)
    assert "4,000 characters or fewer" in refused.value.message_dict["text"][0]
    target.refresh_from_db()
    assert target.version == 1 and target.text == ""


def test_a_section_or_action_holding_a_nul_character_is_refused_and_nothing_changes(world):
    """PostgreSQL cannot store a NUL: without the check the save failed as a server
    error, on SQLite it was stored."""
    discussion = started(world)
    target = section(discussion)
    with pytest.raises(ValidationError, match="hidden control character"):
        actions.do_save_section(acting_user=world.social_worker, section=target,
                                text="Missed \x00appointments.", version=1)
    with pytest.raises(ValidationError, match="hidden control character"):
        agree(world, discussion, description="Call \x00the GP")
    target.refresh_from_db()
    assert (target.version, target.text) == (1, "")
    assert not AgreedAction.objects.exists()


# --- restricted participants -----------------------------------------------------------

def test_a_participant_not_on_a_case_sees_only_its_reference_and_cannot_write_to_it(world):
    discussion = locality_case_on_agenda(world)
    sw = world.social_worker
    context = selectors.room(sw, discussion)
    restricted = next(v for v in context["items"] if v.item.case == world.other_case)
    assert not restricted.visible and restricted.sections == [] and restricted.actions == []
    shown = next(v for v in context["items"] if v.item.case == world.case)
    assert shown.visible and shown.can_edit and len(shown.sections) == 4
    target = section(discussion, position=2)
    with pytest.raises(NotFound):
        actions.do_save_section(acting_user=sw, section=target, text="Not mine to write.", version=1)
    with pytest.raises(NotFound):
        actions.do_add_action(acting_user=sw, item=target.item, description="x",
                              owner=world.team_manager, due_on=TODAY())
    target.refresh_from_db()
    assert target.version == 1 and not AgreedAction.objects.exists()
    # Reading the room is audited for the cases shown, not the one withheld.
    viewed = entries(AuditAction.DISCUSSION_CASE_VIEWED, actor_id=sw.pk)
    assert {e.case_id for e in viewed} == {world.case.pk}


# --- actions --------------------------------------------------------------------------

def test_an_agreed_action_is_recorded_with_owner_and_due_date_and_audited(world):
    discussion = started(world)
    agreed = agree(world, discussion, due=TODAY() + datetime.timedelta(days=7))
    assert agreed.state == AgreedAction.State.PROPOSED and agreed.owner == world.social_worker
    assert agreed.history.get().history_user == world.team_manager
    assert entries(AuditAction.ACTION_AGREED, object_id=str(agreed.pk), case_id=world.case.pk)
    actions.do_remove_action(acting_user=world.team_manager, agreed=agreed)
    assert not AgreedAction.objects.exists()
    assert entries(AuditAction.ACTION_REMOVED, object_id=str(agreed.pk))


def test_the_same_action_agreed_twice_is_refused_and_one_task_stays(world):
    """The same form sent twice (a retry, a resend), or two people at once: the
    discussion is locked, so the second finds the first and is refused with a message."""
    discussion = started(world)
    due = TODAY() + datetime.timedelta(days=7)
    first = agree(world, discussion, due=due)
    with pytest.raises(ValidationError) as refused:
        actions.do_add_action(acting_user=world.team_manager, item=first.item,
                              description=f"  {first.description} ", owner=first.owner, due_on=due)
    assert refused.value.message_dict["description"] == [
        "This action is already agreed for this case, with the same owner and date."]
    assert list(AgreedAction.objects.values_list("pk", flat=True)) == [first.pk]
    # The same words for someone else, or by another date, are another action.
    actions.do_add_action(acting_user=world.team_manager, item=first.item,
                          description=first.description, owner=first.owner,
                          due_on=due + datetime.timedelta(days=1))
    assert AgreedAction.objects.count() == 2


@pytest.mark.parametrize("owner, due, field, message", [
    (None, "today", "owner", "Choose who will do this"),
    ("locality", "today", "owner", "is not a member of"),
    ("sw", "yesterday", "due_on", "today or in the future"),
    ("sw", None, "due_on", "Enter the date"),
])
def test_an_action_needs_a_team_member_owner_and_a_due_date_not_past(world, owner, due, field, message):
    discussion = started(world)
    owner = {None: None, "sw": world.social_worker,
             "locality": world.locality_users[Role.SOCIAL_WORKER]}[owner]
    due = {"today": TODAY(), "yesterday": TODAY() - datetime.timedelta(days=1), None: None}[due]
    with pytest.raises(ValidationError) as refused:
        actions.do_add_action(acting_user=world.team_manager, item=discussion.items.get(),
                              description="Visit", owner=owner, due_on=due)
    assert any(message in m for m in refused.value.message_dict[field])
    assert not AgreedAction.objects.exists()


def test_an_action_owner_must_be_working_on_the_case(world):
    discussion = locality_case_on_agenda(world)
    item = discussion.items.get(case=world.other_case)
    with pytest.raises(ValidationError, match="is not working on EH-2025-0102"):
        actions.do_add_action(acting_user=world.team_manager, item=item, description="Call school",
                              owner=world.social_worker, due_on=TODAY())


# --- sign-off -------------------------------------------------------------------------

def test_sign_off_files_a_final_note_in_each_case_and_turns_actions_into_tasks(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    discussion = started(world, cases=[world.case, world.other_case])
    manager = world.team_manager
    actions.do_join_discussion(acting_user=world.social_worker, discussion=discussion, channel_name="a")
    for position, decision in ((1, "Remain on the plan."), (2, "Step down to early help.")):
        actions.do_save_section(acting_user=manager, section=section(discussion, position=position),
                                text=decision, version=1)
    actions.do_save_section(acting_user=manager, section=section(discussion, "worries"),
                            text="Missed health appointments.", version=1)
    agreed = agree(world, discussion, due=TODAY() + datetime.timedelta(days=3))
    seq_before = CaseEvent.objects.filter(case=world.case).count()

    actions.do_sign_off(acting_user=manager, discussion=discussion)

    discussion.refresh_from_db()
    assert discussion.status == Discussion.Status.SIGNED_OFF and discussion.signed_off_by == manager
    for item in discussion.items.select_related("filed_note"):
        note = item.filed_note
        assert note.case == item.case and note.is_final and note.author == manager
        assert note.note_type == CaseNote.NoteType.GROUP_CASE_DISCUSSION
        assert note.sensitivity == CaseNote.Sensitivity.STANDARD
        assert set(note.people.all()) == set(item.case.people.all())
    harper = discussion.items.get(case=world.case).filed_note.body
    assert "Missed health appointments." in harper and "Remain on the plan." in harper
    assert "Visit the children at home" in harper and world.social_worker.get_full_name() in harper
    assert "Step down to early help." in discussion.items.get(case=world.other_case).filed_note.body
    # The note reached each case's room through the case's numbered events.
    assert CaseEvent.objects.filter(case=world.case, kind="note.created").count() > 0
    assert CaseEvent.objects.filter(case=world.case).count() == seq_before + 1
    agreed.refresh_from_db()
    assert agreed.state == AgreedAction.State.OPEN
    assert Attendance.objects.get(user=world.social_worker).left_at == discussion.signed_off_at
    signed = entries(AuditAction.DISCUSSION_SIGNED_OFF, object_id=str(discussion.pk))
    assert {e.case_id for e in signed} == {world.case.pk, world.other_case.pk}
    tasks = selectors.my_actions(world.social_worker)
    assert [t.action for t in tasks["todo"]] == [agreed] and tasks["todo"][0].visible


def _present_line(note_body: str) -> str:
    return next((line for line in note_body.splitlines() if line.startswith("Present: ")), "")


def test_the_filed_record_names_only_those_in_the_room_once_the_meeting_had_started(world):
    manager, sw = world.team_manager, world.social_worker
    probation, health = world.user(Role.PROBATION_OFFICER), world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    discussion = schedule(world)
    # Before the start: probation looks at the agenda and leaves; the social worker opens
    # the room and stays into the meeting.
    actions.do_join_discussion(acting_user=probation, discussion=discussion, channel_name="p")
    actions.do_leave_discussion(channel_name="p")
    actions.do_join_discussion(acting_user=sw, discussion=discussion, channel_name="s")
    discussion = actions.do_start_discussion(acting_user=manager, discussion=discussion)
    actions.do_join_discussion(acting_user=health, discussion=discussion, channel_name="h")
    actions.do_leave_discussion(channel_name="h")  # in the meeting for a while, then left
    ready(world, discussion)
    actions.do_sign_off(acting_user=manager, discussion=discussion)
    present = _present_line(discussion.items.get().filed_note.body)
    assert sw.get_full_name() in present and health.get_full_name() in present
    assert probation.get_full_name() not in present
    assert present.count(sw.get_full_name()) == 1


def test_the_room_lists_each_person_once_with_reloads_as_one_stretch_and_not_early_readers(world):
    discussion = schedule(world)
    sw, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    # Probation reads the agenda before the start, and leaves: listed until it starts.
    actions.do_join_discussion(acting_user=probation, discussion=discussion, channel_name="early")
    actions.do_leave_discussion(channel_name="early")
    assert [p.display_name for p in selectors.attendance(discussion)] == [probation.get_full_name()]
    discussion = actions.do_start_discussion(acting_user=world.team_manager, discussion=discussion)
    assert selectors.attendance(discussion) == []  # reading the agenda is not attending

    for channel in ("first", "second"):  # a reload: the last tab closes, a new one opens
        actions.do_join_discussion(acting_user=sw, discussion=discussion, channel_name=channel)
        actions.do_leave_discussion(channel_name=channel)
    actions.do_join_discussion(acting_user=sw, discussion=discussion, channel_name="third")
    stints = list(Attendance.objects.filter(discussion=discussion, user=sw).order_by("joined_at", "pk"))
    assert len(stints) == 3
    [person] = selectors.attendance(discussion)
    assert person.display_name == sw.get_full_name()
    assert person.stretches == [(stints[0].joined_at, None)]  # one stretch, still in the room

    # Away for longer than a reload takes: two stretches.
    now = timezone.now()
    Discussion.objects.filter(pk=discussion.pk).update(started_at=now - datetime.timedelta(hours=1))
    discussion.refresh_from_db()
    Attendance.objects.filter(discussion=discussion, user=probation).update(
        joined_at=now - datetime.timedelta(minutes=70), left_at=now - datetime.timedelta(minutes=65))
    for stint, (joined, left) in zip(stints[:2], [(50, 40), (39, 30)], strict=True):
        Attendance.objects.filter(pk=stint.pk).update(
            joined_at=now - datetime.timedelta(minutes=joined),
            left_at=now - datetime.timedelta(minutes=left))
    [person] = selectors.attendance(discussion)
    assert person.stretches == [(now - datetime.timedelta(minutes=50),
                                 now - datetime.timedelta(minutes=30)),
                                (stints[2].joined_at, None)]


def test_a_case_the_meeting_did_not_reach_is_taken_off_the_agenda_and_sign_off_files_the_rest(world):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    manager = world.team_manager
    discussion = started(world, cases=[world.case, world.other_case])
    unreached = discussion.items.get(case=world.other_case)
    actions.do_move_to_item(acting_user=manager, discussion=discussion, item=unreached)
    ready(world, discussion)
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    actions.do_remove_agenda_item(acting_user=manager, item=unreached)
    discussion.refresh_from_db()
    assert [i.case for i in discussion.items.order_by("position")] == [world.case]
    assert discussion.current_item == discussion.items.get()  # moved off the removed item
    [changed] = AuditEvent.objects.filter(pk__gt=last)
    assert (changed.action, changed.case_id, changed.reason) == (
        AuditAction.DISCUSSION_CHANGED, world.other_case.pk,
        "case not reached, removed from the agenda")
    assert not Section.objects.filter(item_id=unreached.pk).exists()
    assert Section.history.filter(item_id=unreached.pk, history_type="-").count() == 4
    actions.do_sign_off(acting_user=manager, discussion=discussion)
    assert not CaseNote.objects.filter(case=world.other_case,
                                       note_type=CaseNote.NoteType.GROUP_CASE_DISCUSSION).exists()


@pytest.mark.parametrize("written", ["section", "emptied-section", "action"])
def test_a_case_written_in_during_the_meeting_stays_on_the_agenda(world, written):
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.team_manager)
    manager = world.team_manager
    discussion = started(world, cases=[world.case, world.other_case])
    item = discussion.items.get(case=world.other_case)
    worries = section(discussion, "worries", position=2)
    if written == "action":
        actions.do_add_action(acting_user=manager, item=item, description="Call the school",
                              owner=world.team_manager, due_on=TODAY())
    else:
        actions.do_save_section(acting_user=manager, section=worries, text="Rent arrears.", version=1)
        if written == "emptied-section":
            actions.do_save_section(acting_user=manager, section=worries, text="", version=2)
    sections_before = Section.objects.filter(item=item).count()
    with pytest.raises(ValidationError) as refused:
        actions.do_remove_agenda_item(acting_user=manager, item=item)
    assert "its record has been written in or an action agreed, so it stays" in \
        refused.value.messages[0]
    assert discussion.items.filter(pk=item.pk).exists()
    assert Section.objects.filter(item=item).count() == sections_before


def test_sign_off_with_an_empty_decision_is_refused_and_changes_nothing(world):
    discussion = started(world)
    with pytest.raises(ValidationError) as refused:
        actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    assert refused.value.messages == [
        "FS-2025-0417: record the decision before signing off (or, if the discussion did not "
        "reach this case, take it off the agenda)."]
    discussion.refresh_from_db()
    assert discussion.status == Discussion.Status.IN_PROGRESS
    assert not CaseNote.objects.filter(note_type=CaseNote.NoteType.GROUP_CASE_DISCUSSION).exists()
    assert not entries(AuditAction.DISCUSSION_SIGNED_OFF)


def test_sign_off_is_refused_while_a_kept_text_waits(world):
    discussion = started(world)
    ready(world, discussion)
    actions.do_save_section(acting_user=world.social_worker, section=section(discussion), version=1,
                            base_text="", text="Something else entirely.")
    with pytest.raises(ValidationError, match="kept text to add or dismiss"):
        actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    actions.do_resolve_kept_text(acting_user=world.team_manager, kept=KeptText.objects.get(), add=False)
    actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)


def test_sign_off_is_refused_when_an_owner_has_left_the_team_or_a_due_date_has_passed(world):
    discussion = started(world)
    ready(world, discussion)
    leaver = world.user(Role.SOCIAL_WORKER, 1)
    agree(world, discussion, owner=leaver, description="Chase the GP")
    overdue = agree(world, discussion, description="Book the review")
    AgreedAction.objects.filter(pk=overdue.pk).update(due_on=TODAY() - datetime.timedelta(days=1))
    do_end_membership(acting_user=world.bootstrap_admin, membership=world.memberships[leaver.pk],
                      end_date=TODAY())
    with pytest.raises(ValidationError) as refused:
        actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    text = " ".join(refused.value.messages)
    assert "Chase the GP" in text and "is not a member of" in text
    assert "Book the review" in text and "today or in the future" in text
    assert Discussion.objects.get().status == Discussion.Status.IN_PROGRESS


def _agree_on(world, discussion, position, owner, description):
    return actions.do_add_action(acting_user=world.team_manager, description=description,
                                 item=discussion.items.get(position=position), owner=owner,
                                 due_on=TODAY())


def test_sign_off_is_refused_when_an_owner_no_longer_works_on_the_case(world):
    discussion = locality_case_on_agenda(world)
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    grant = do_add_keyworker(acting_user=locality_manager, case=world.other_case,
                             user=world.social_worker)
    for position in (1, 2):
        actions.do_save_section(acting_user=world.team_manager, version=1, text="Agreed.",
                                section=section(discussion, position=position))
    _agree_on(world, discussion, 1, world.social_worker, "Visit the children")
    _agree_on(world, discussion, 2, world.social_worker, "Call the school")
    do_remove_keyworker(acting_user=locality_manager, grant=grant)
    with pytest.raises(ValidationError) as refused:
        actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    name = world.social_worker.get_full_name()
    assert refused.value.messages == [
        f"EH-2025-0102: action 'Call the school': {name} is not working on EH-2025-0102: "
        "choose someone who is."]
    assert Discussion.objects.get().status == Discussion.Status.IN_PROGRESS


def test_sign_off_asks_the_policy_once_per_action_owner_however_many_actions(world, monkeypatch):
    discussion = locality_case_on_agenda(world)
    do_add_keyworker(acting_user=world.locality_users[Role.TEAM_MANAGER], case=world.other_case,
                     user=world.social_worker)
    for position in (1, 2):
        actions.do_save_section(acting_user=world.team_manager, version=1, text="Agreed.",
                                section=section(discussion, position=position))
    for position, description in ((1, "Visit"), (1, "Call the GP"), (2, "Call the school")):
        _agree_on(world, discussion, position, world.social_worker, description)
    asked: list[tuple[int, set[int]]] = []
    batch = type(policy)._case_accesses

    def spy(self, user, cases):
        asked.append((user.pk, {case.pk for case in cases}))
        return batch(self, user, cases)

    monkeypatch.setattr(type(policy), "_case_accesses", spy)
    actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    owners = [cases for user_id, cases in asked if user_id == world.social_worker.pk]
    assert owners == [{world.case.pk, world.other_case.pk}]
    assert Discussion.objects.get().status == Discussion.Status.SIGNED_OFF


def test_completing_a_task_is_recorded_in_the_case(world):
    discussion = started(world)
    ready(world, discussion)
    agreed = agree(world, discussion)
    with pytest.raises(NotFound):  # not a task until signed off
        actions.do_complete_action(acting_user=world.social_worker, agreed=agreed)
    actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    with pytest.raises(NotFound):  # someone else's task
        actions.do_complete_action(acting_user=world.user(Role.PROBATION_OFFICER), agreed=agreed)
    events_before = CaseEvent.objects.filter(case=world.case).count()
    actions.do_complete_action(acting_user=world.social_worker, agreed=agreed, outcome="Seen both.")
    agreed.refresh_from_db()
    assert agreed.state == AgreedAction.State.DONE and agreed.completed_by == world.social_worker
    assert agreed.outcome == "Seen both." and agreed.history.first().history_user == world.social_worker
    assert entries(AuditAction.ACTION_COMPLETED, object_id=str(agreed.pk), case_id=world.case.pk)
    assert CaseEvent.objects.filter(case=world.case).count() == events_before + 1
    access = policy.case_access(world.user(Role.PROBATION_OFFICER), world.case)
    assert selectors.case_actions(access) == [agreed]
    with pytest.raises(ValidationError, match="already been marked as done"):
        actions.do_complete_action(acting_user=world.social_worker, agreed=agreed)


def test_overdue_tasks_are_flagged_and_counted(world):
    discussion = started(world)
    ready(world, discussion)
    agreed = agree(world, discussion)
    actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    assert not agreed.is_overdue
    AgreedAction.objects.filter(pk=agreed.pk).update(due_on=TODAY() - datetime.timedelta(days=2))
    tasks = selectors.my_actions(world.social_worker)
    assert tasks["overdue"] == 1 and tasks["todo"][0].action.is_overdue


def test_policy_answers_who_may_schedule_run_and_join(world):
    discussion = schedule(world)
    assert policy.can(world.team_manager, Action.SCHEDULE_DISCUSSION, world.fs_team)
    assert not policy.can(world.social_worker, Action.SCHEDULE_DISCUSSION, world.fs_team)
    assert policy.can(world.social_worker, Action.JOIN_DISCUSSION, discussion)
    assert not policy.can(world.social_worker, Action.RUN_DISCUSSION, discussion)
    for outsider in (world.locality_users[Role.TEAM_MANAGER], world.user(Role.IG_OFFICER),
                     world.user(Role.ADMINISTRATOR), world.bootstrap_admin):
        assert not policy.can(outsider, Action.JOIN_DISCUSSION, discussion)
        assert not policy.can(outsider, Action.RUN_DISCUSSION, discussion)
