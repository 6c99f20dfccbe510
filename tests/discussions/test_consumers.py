"""The live discussion room (ws/discussions/<id>/) end to end through
`workspace.asgi.application`: the origin check, the session and auth middleware, the
router and DiscussionRoomConsumer.

Each test signs real people in (a session cookie, as a browser has), opens sockets as
the room page would, and proves what each participant receives: attendance and
presence, the record as it stands on resume, the agenda moving, sections saved, merged
or kept, record content kept from a participant who may not see an item's case,
refusals that look alike and are audited, bad input that changes nothing, access
ending on an open socket, the editing indicator, and the record locked at sign-off.
"""

from __future__ import annotations

import datetime
import json
from html import escape

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from audit.models import AuditAction, AuditEvent, Outcome
from casenotes.actions import do_add_keyworker, do_remove_keyworker
from casenotes.actions.notes import do_create_case
from casenotes.consumers import CLOSE_REFUSED
from casenotes.models import Case, CaseGrant
from discussions.actions import (
    SIGNED_OFF,
    do_add_action,
    do_cancel_discussion,
    do_move_to_item,
    do_remove_agenda_item,
    do_save_section,
    do_sign_off,
    do_start_discussion,
)
from discussions.models import (
    SECTION_MAX_LENGTH,
    AgendaItem,
    AgreedAction,
    Attendance,
    Discussion,
    DiscussionPresence,
    KeptText,
    Section,
)
from teams.actions import do_end_membership
from teams.models import Role
from tests.casenotes import rooms as case_rooms
from tests.casenotes.rooms import live_layer_fixture  # noqa: F401
from tests.discussions.conftest import schedule
from tests.helpers import AuditWatch

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
USER_AGENT = b"pytest-live-room"  # what tests/casenotes/rooms.py sends

DECISION = Section.Kind.DECISION
WORRIES = Section.Kind.WORRIES

# The texts of a section saved, merged and clashed (see test_section_save_...).
FIRST = "Mum attended the meeting. Dad was calm."
ON_TIME = "Mum attended the meeting on time. Dad was calm."  # the manager's change
VERY_CALM = "Mum attended the meeting. Dad was very calm."  # a different word, from FIRST
MERGED = "Mum attended the meeting on time. Dad was very calm."
ANGRY = "Mum attended the meeting on time. Dad was angry."  # the same word, from ON_TIME

SECRET = "Osei family: Abena disclosed a new partner (SECRET-4471)."


# --- sockets -----------------------------------------------------------------------------

class Tab(case_rooms.Tab):
    """One open socket to a discussion room, as the room page holds it (the case room's
    tab, with the discussion room's protocol)."""

    state: dict | None = None

    async def resume(self) -> dict:
        """Send resume; return the state (the frames must be exactly state, synced)."""
        await self.send({"type": "resume", "after": 0})
        frames = await self.frames_until("synced")
        assert [f["type"] for f in frames] == ["state", "synced"], f"{self}: {frames}"
        self.state = frames[0]
        return self.state

    async def save(self, section: Section, *, version: int, base: str, text: str) -> None:
        await self.send({"type": "section.save", "section": section.pk, "version": version,
                         "base": base, "text": text})


class Rooms(case_rooms.Rooms):
    """Opens sockets to discussion rooms and closes every one at the end of the test."""

    tab_class = Tab

    async def connect(self, discussion_id: int, user=None) -> Tab:
        """A socket, accepted (the server always accepts first, then closes if it
        refuses) but not yet resumed. Without `user` it is anonymous."""
        return await super().connect(0, user=user, path=f"/ws/discussions/{discussion_id}/")

    async def open(self, discussion_id: int, user, *, resume: bool = True) -> Tab:
        """A joined tab with its first presence list taken, resumed unless told not to."""
        tab = await self.connect(discussion_id, user)
        await tab.presence_update()
        if resume:
            await tab.resume()
        return tab


@pytest.fixture
async def rooms(world, live_layer):
    opened = Rooms()
    yield opened
    await opened.close_all()


async def settle(*tabs, timeout: float = 0.3) -> None:
    """Take every presence update already on its way (any other frame fails)."""
    for tab in tabs:
        await tab.assert_nothing(timeout)


# --- the world's discussion ------------------------------------------------------------------

@db
def scheduled(world, **kwargs) -> Discussion:
    return schedule(world, **kwargs)


@db
def running(world, **kwargs) -> Discussion:
    discussion = schedule(world, **kwargs)
    return do_start_discussion(acting_user=world.team_manager, discussion=discussion)


@db
def item_of(discussion: Discussion, case: Case) -> AgendaItem:
    return AgendaItem.objects.get(discussion=discussion, case=case)


@db
def section_of(discussion: Discussion, case: Case, kind: str) -> Section:
    return Section.objects.select_related("item__discussion", "item__case").get(
        item__discussion=discussion, item__case=case, kind=kind)


@db
def fresh(section: Section) -> Section:
    return Section.objects.select_related("item__discussion", "item__case").get(pk=section.pk)


@db
def audit_since(watch: AuditWatch) -> list[AuditEvent]:
    return watch.new()


@db
def attendance(discussion: Discussion, user=None) -> list[Attendance]:
    rows = Attendance.objects.filter(discussion=discussion).order_by("joined_at", "pk")
    return list(rows.filter(user=user) if user is not None else rows)


@db
def presence_rows(discussion_id: int, user=None) -> int:
    rows = DiscussionPresence.objects.filter(discussion_id=discussion_id)
    return (rows.filter(user=user) if user is not None else rows).count()


@db
def record_rows() -> dict:
    """Every row a message to the room could write, for 'this changed nothing'."""
    return {
        "discussions": list(Discussion.objects.order_by("pk").values_list(
            "pk", "status", "current_item_id")),
        "sections": list(Section.objects.order_by("pk").values_list("pk", "text", "version")),
        "section_history": Section.history.model.objects.count(),
        "kept": list(KeptText.objects.order_by("pk").values_list("pk", "text", "resolution")),
        "actions": list(AgreedAction.objects.order_by("pk").values_list("pk", "description")),
        "attendance": list(Attendance.objects.order_by("pk").values_list("pk", "left_at")),
        "record_audit": AuditEvent.objects.filter(action__in=[
            AuditAction.SECTION_EDITED, AuditAction.SECTION_TEXT_KEPT,
            AuditAction.ACTION_AGREED]).count(),
    }


def label(user) -> str:
    return user.get_full_name() or user.get_username()


def save_frame(section_id: int, **overrides) -> dict:
    message = {"type": "section.save", "section": section_id, "version": 1, "base": "",
               "text": "Decision: stay on the child-protection plan."}
    message.update(overrides)
    return message


async def barrier(tab_of_writer: Tab, section: Section, text: str, *tabs: Tab) -> None:
    """A save that every tab in `tabs` may see. A tab whose next frame is its `section`
    notice received nothing in between: channel messages arrive in the order sent."""
    current = await fresh(section)
    await tab_of_writer.save(current, version=current.version, base=current.text, text=text)
    for tab in tabs:
        message = await tab.frame()
        if tab is tab_of_writer:
            assert message["type"] == "section.saved", f"{tab}: {message}"
            message = await tab.frame()
        assert message["type"] == "section", f"{tab}: expected only the barrier, got {message}"
        assert (message["item"], message["text"]) == (current.item_id, text), message


# --- 1. attendance and its audit --------------------------------------------------------------

async def test_joining_records_attendance_with_labels_and_an_audit_entry(world, rooms):
    sw = world.social_worker
    discussion = await scheduled(world)
    watch = await db(AuditWatch)()

    tab = await rooms.open(discussion.pk, sw, resume=False)
    assert tab.presence == [{"user": sw.pk, "name": label(sw), "role": "Social worker",
                             "agency": "Children's services"}]

    [stint] = await attendance(discussion, sw)
    assert (stint.display_name, stint.role_label, stint.agency_label) == (
        label(sw), "Social worker", "Children's services")
    assert stint.was_invited is True
    assert stint.left_at is None
    joined = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_JOINED]
    assert [(e.actor_id, e.object_type, e.object_id, e.outcome) for e in joined] == [
        (sw.pk, "discussion", str(discussion.pk), Outcome.ALLOWED)]
    assert joined[0].user_agent == USER_AGENT.decode()
    assert await presence_rows(discussion.pk, sw) == 1


async def test_a_member_who_was_not_invited_is_recorded_as_not_invited(world, rooms):
    sw, guest = world.social_worker, world.user(Role.PROBATION_OFFICER)
    discussion = await scheduled(world, invitees=[sw])
    await rooms.open(discussion.pk, guest, resume=False)
    [stint] = await attendance(discussion, guest)
    assert stint.was_invited is False
    assert (stint.role_label, stint.agency_label) == ("Probation officer", "Probation")


async def test_disconnecting_the_last_connection_ends_the_stretch_and_is_audited(world, rooms):
    sw = world.social_worker
    discussion = await scheduled(world)
    tab = await rooms.open(discussion.pk, sw)
    watch = await db(AuditWatch)()

    await tab.disconnect()

    [stint] = await attendance(discussion, sw)
    assert stint.left_at is not None and stint.left_at >= stint.joined_at
    left = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_LEFT]
    assert [(e.actor_id, e.object_type, e.object_id) for e in left] == [
        (sw.pk, "discussion", str(discussion.pk))]
    assert await presence_rows(discussion.pk) == 0


async def test_two_connections_of_one_person_are_one_stretch_and_listed_once(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    discussion = await scheduled(world)
    watch = await db(AuditWatch)()
    first = await rooms.open(discussion.pk, sw)
    second = await rooms.open(discussion.pk, sw)
    manager = await rooms.open(discussion.pk, tm)
    await settle(first, second, manager)

    for tab in (first, second, manager):
        assert sorted(p["user"] for p in tab.presence) == sorted([sw.pk, tm.pk]), tab
    assert await presence_rows(discussion.pk, sw) == 2  # one row per connection
    assert len(await attendance(discussion, sw)) == 1
    entries = await audit_since(watch)
    assert [e.actor_id for e in entries if e.action == AuditAction.DISCUSSION_JOINED] == [sw.pk, tm.pk]

    await second.disconnect()  # one of two closed: still in the room, same stretch
    assert [p["user"] for p in await manager.presence_update()].count(sw.pk) == 1
    [stint] = await attendance(discussion, sw)
    assert stint.left_at is None
    assert not [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_LEFT]

    await first.disconnect()  # the last one: the stretch ends, once
    assert [p["user"] for p in await manager.presence_update()] == [tm.pk]
    [stint] = await attendance(discussion, sw)
    assert stint.left_at is not None
    left = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_LEFT]
    assert [e.actor_id for e in left] == [sw.pk]


# --- 2. presence ----------------------------------------------------------------------------

async def test_presence_reaches_the_others_as_people_join_and_leave(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    mh = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    discussion = await scheduled(world)

    manager = await rooms.open(discussion.pk, tm)
    assert [p["user"] for p in manager.presence] == [tm.pk]

    worker = await rooms.open(discussion.pk, sw)
    everyone = await manager.presence_update()
    assert {p["user"] for p in everyone} == {sw.pk, tm.pk}
    assert worker.presence == everyone
    listed = {p["user"]: p for p in everyone}
    assert listed[tm.pk] == {"user": tm.pk, "name": label(tm), "role": "Team manager",
                             "agency": "Children's services"}

    practitioner = await rooms.open(discussion.pk, mh)
    for tab in (manager, worker):
        people = await tab.presence_update()
        assert {p["user"] for p in people} == {sw.pk, tm.pk, mh.pk}
        assert {p["user"]: p for p in people}[mh.pk] == {
            "user": mh.pk, "name": label(mh), "role": "Mental-health practitioner",
            "agency": "NHS mental health"}

    await worker.disconnect()
    for tab in (manager, practitioner):
        await settle(tab)
        assert {p["user"] for p in tab.presence} == {tm.pk, mh.pk}, tab


# --- 3. resume --------------------------------------------------------------------------------

async def test_resume_sends_the_record_as_it_stands_then_synced(world, rooms):
    sw = world.social_worker
    discussion = await running(world)
    item = await item_of(discussion, world.case)
    worries = await section_of(discussion, world.case, WORRIES)
    await db(do_save_section)(acting_user=world.team_manager, section=worries,
                              text="Missed school twice this month.", version=1)
    tab = await rooms.open(discussion.pk, sw, resume=False)
    watch = await db(AuditWatch)()

    await tab.send({"type": "resume", "after": 0})
    state = await tab.expect("state")
    assert await tab.expect("synced") == {"type": "synced", "seq": 0}

    assert (state["status"], state["current"]) == ("in_progress", item.pk)
    assert list(state["items"]) == [str(item.pk)]
    sections = state["items"][str(item.pk)]["sections"]
    assert set(sections) == set(Section.Kind.values)
    assert sections["worries"] == {"text": "Missed school twice this month.", "version": 2}
    assert sections["decision"] == {"text": "", "version": 1}
    assert set(state["items"][str(item.pk)]["kept_html"]) == set(Section.Kind.values)
    assert "actions_html" in state["items"][str(item.pk)]
    viewed = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_CASE_VIEWED]
    assert [(e.actor_id, e.case_id) for e in viewed] == [(sw.pk, world.case.pk)]


async def test_messages_before_resume_are_refused_as_out_of_order(world, rooms):
    discussion = await running(world)
    decision = await section_of(discussion, world.case, DECISION)
    tab = await rooms.open(discussion.pk, world.social_worker, resume=False)
    before = await record_rows()

    for message in ({"type": "ping"}, save_frame(decision.pk),
                    {"type": "editing", "section": decision.pk, "active": True}):
        await tab.send(message)
        error = await tab.expect("error")
        assert error["code"] == "out_of_order"
        assert error["message"]
    assert await record_rows() == before

    await tab.resume()  # resume still works afterwards
    await tab.ping()


# --- 4. the agenda moves for everyone ----------------------------------------------------------

@db
def second_fs_case(world) -> Case:
    return do_create_case(
        acting_user=world.team_manager, reference="FS-2025-0588", family_name="Lowe",
        category=Case.Category.CHILD_PROTECTION_PLAN, team=world.fs_team,
        lead_practitioner=world.social_worker,
        opened_on=timezone.localdate() - datetime.timedelta(days=10))


async def test_starting_and_moving_the_agenda_reaches_every_participant(world, rooms):
    tm = world.team_manager
    other = await second_fs_case(world)
    discussion = await scheduled(world, cases=[world.case, other])
    first, second = await item_of(discussion, world.case), await item_of(discussion, other)
    tabs = [await rooms.open(discussion.pk, user) for user in (
        tm, world.social_worker, world.user(Role.PROBATION_OFFICER))]
    await settle(*tabs)
    assert all(tab.state["status"] == "scheduled" and tab.state["current"] is None for tab in tabs)

    await db(do_start_discussion)(acting_user=tm, discussion=discussion)
    for tab in tabs:
        assert await tab.expect("status") == {"type": "status", "status": "in_progress",
                                              "current": first.pk}

    await db(do_move_to_item)(acting_user=tm, discussion=discussion, item=second)
    for tab in tabs:
        assert await tab.expect("agenda") == {"type": "agenda", "current": second.pk}

    await db(do_move_to_item)(acting_user=tm, discussion=discussion, item=first)
    for tab in tabs:
        assert await tab.expect("agenda") == {"type": "agenda", "current": first.pk}
        await tab.assert_nothing()

    # The meeting does not reach the second case: taken off the agenda, on every page.
    await db(do_remove_agenda_item)(acting_user=tm, item=second)
    for tab in tabs:
        assert await tab.expect("agenda") == {"type": "agenda", "current": first.pk,
                                              "removed": second.pk}
        await tab.assert_nothing()


# --- 5. saving a section over the socket -------------------------------------------------------

async def test_section_save_is_saved_merged_or_kept_and_reaches_the_others(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    discussion = await running(world)
    item = await item_of(discussion, world.case)
    section = await section_of(discussion, world.case, DECISION)
    worker = await rooms.open(discussion.pk, sw)
    manager = await rooms.open(discussion.pk, tm)
    await settle(worker, manager)

    async def reply_and_notice(tab: Tab) -> tuple[dict, dict]:
        frames = {}
        for _ in range(2):
            message = await tab.frame()
            frames[message["type"]] = message
        assert set(frames) == {"section.saved", "section"}, frames
        return frames["section.saved"], frames["section"]

    # Saved: based on the current version.
    await worker.save(section, version=1, base="", text=FIRST)
    saved, own_notice = await reply_and_notice(worker)
    assert (saved["outcome"], saved["section"], saved["item"], saved["version"], saved["text"],
            saved["kept"]) == ("saved", section.pk, item.pk, 2, FIRST, None)
    notice = await manager.expect("section")
    assert notice == own_notice == {"type": "section", "item": item.pk, "section": "decision",
                                    "version": 2, "text": FIRST, "by": sw.pk, "by_label": label(sw)}

    # The manager changes other words, from version 2.
    await manager.save(section, version=2, base=FIRST, text=ON_TIME)
    saved, _ = await reply_and_notice(manager)
    assert (saved["outcome"], saved["version"], saved["text"]) == ("saved", 3, ON_TIME)
    assert (await worker.expect("section"))["text"] == ON_TIME

    # Merged: the worker's save is still based on version 2, changing a different word.
    await worker.save(section, version=2, base=FIRST, text=VERY_CALM)
    saved, _ = await reply_and_notice(worker)
    assert (saved["outcome"], saved["version"], saved["text"], saved["kept"]) == (
        "merged", 4, MERGED, None)
    assert "on time" in saved["text"] and "very calm" in saved["text"]
    notice = await manager.expect("section")
    assert (notice["version"], notice["text"], notice["by"]) == (4, MERGED, sw.pk)

    # Kept: based on version 3, changing the word the merge changed meanwhile.
    await manager.save(section, version=3, base=ON_TIME, text=ANGRY)
    kept_reply = await manager.expect("section.saved")
    assert (kept_reply["outcome"], kept_reply["version"], kept_reply["text"]) == ("kept", 4, MERGED)
    kept = await db(KeptText.objects.get)(section=section)
    assert kept_reply["kept"] == kept.pk
    assert (kept.author_id, kept.text, kept.based_on_version, kept.resolution) == (
        tm.pk, ANGRY, 3, "")
    for tab in (worker, manager):
        message = await tab.expect("kept")
        assert (message["item"], message["section"]) == (item.pk, "decision")
        assert escape(ANGRY) in message["html"]

    current = await fresh(section)
    assert (current.version, current.text) == (4, MERGED)
    history = await db(lambda: list(current.history.order_by("history_id")
                                    .values_list("version", "text")))()
    assert history == [(1, ""), (2, FIRST), (3, ON_TIME), (4, MERGED)]
    for tab in (worker, manager):
        await tab.assert_nothing()


async def test_a_save_of_the_same_text_changes_nothing(world, rooms):
    discussion = await running(world)
    section = await section_of(discussion, world.case, DECISION)
    tab = await rooms.open(discussion.pk, world.social_worker)
    await tab.save(section, version=1, base="", text=FIRST)
    assert (await tab.expect("section.saved"))["outcome"] == "saved"
    await tab.expect("section")
    before = await record_rows()

    await tab.save(section, version=2, base=FIRST, text=FIRST)
    reply = await tab.expect("section.saved")
    assert (reply["outcome"], reply["version"]) == ("unchanged", 2)
    await tab.assert_nothing()
    assert await record_rows() == before


# --- 6. an item one participant may not see ----------------------------------------------------

@db
def restricted_discussion(world) -> Discussion:
    """The FS team's case and the locality team's case on one agenda. The FS manager and
    the second FS social worker are keyworkers on the locality case; the first FS social
    worker has no relationship to it."""
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    for user in (world.team_manager, world.user(Role.SOCIAL_WORKER, 1)):
        do_add_keyworker(acting_user=locality_manager, case=world.other_case, user=user)
    discussion = schedule(world, cases=[world.case, world.other_case])
    discussion = do_start_discussion(acting_user=world.team_manager, discussion=discussion)
    worries = Section.objects.get(item__discussion=discussion, item__case=world.other_case,
                                  kind=WORRIES)
    do_save_section(acting_user=world.team_manager, section=worries, text=SECRET, version=1)
    return discussion


async def test_an_item_a_participant_may_not_see_never_reaches_them(world, rooms):
    tm, keyworker, restricted = (world.team_manager, world.user(Role.SOCIAL_WORKER, 1),
                                 world.social_worker)
    discussion = await restricted_discussion(world)
    own_item = await item_of(discussion, world.case)
    hidden_item = await item_of(discussion, world.other_case)
    hidden_decision = await section_of(discussion, world.other_case, DECISION)
    own_decision = await section_of(discussion, world.case, DECISION)

    manager = await rooms.open(discussion.pk, tm)
    colleague = await rooms.open(discussion.pk, keyworker)
    outsider = await rooms.open(discussion.pk, restricted)
    await settle(manager, colleague, outsider)

    # The record as it stands: the hidden item's entry is not there at all.
    assert set(manager.state["items"]) == set(colleague.state["items"]) == {
        str(own_item.pk), str(hidden_item.pk)}
    assert manager.state["items"][str(hidden_item.pk)]["sections"]["worries"]["text"] == SECRET
    assert set(outsider.state["items"]) == {str(own_item.pk)}
    assert SECRET not in json.dumps(outsider.state)

    # A section saved: the permitted participants receive it, the outsider does not.
    await manager.save(hidden_decision, version=1, base="", text="Step down to child in need.")
    assert (await manager.expect("section.saved"))["outcome"] == "saved"
    for tab in (manager, colleague):
        notice = await tab.expect("section")
        assert (notice["item"], notice["text"]) == (hidden_item.pk, "Step down to child in need.")

    # An action agreed.
    await db(do_add_action)(acting_user=tm, item=hidden_item, description="Visit Abena at home",
                            owner=tm, due_on=timezone.localdate())
    for tab in (manager, colleague):
        message = await tab.expect("actions")
        assert message["item"] == hidden_item.pk and "Visit Abena at home" in message["html"]

    # A clashing save, kept beside the section.
    await colleague.save(hidden_decision, version=1, base="", text="Close the case.")
    assert (await colleague.expect("section.saved"))["outcome"] == "kept"
    for tab in (manager, colleague):
        message = await tab.expect("kept")
        assert message["item"] == hidden_item.pk and "Close the case." in message["html"]

    # Someone typing in the hidden item's section.
    await manager.send({"type": "editing", "section": hidden_decision.pk, "active": True})
    message = await colleague.expect("editing")
    assert (message["item"], message["section"], message["user"]) == (hidden_item.pk, "decision", tm.pk)

    # The outsider's next frame is the barrier on the item they share: nothing before it.
    await barrier(manager, own_decision, "Stay on the plan.", manager, colleague, outsider)
    for tab in (manager, colleague, outsider):
        await tab.assert_nothing()


async def test_saving_a_section_of_an_item_one_may_not_see_is_refused_and_changes_nothing(
    world, rooms
):
    restricted = world.social_worker
    discussion = await restricted_discussion(world)
    hidden_worries = await section_of(discussion, world.other_case, WORRIES)
    hidden_decision = await section_of(discussion, world.other_case, DECISION)
    manager = await rooms.open(discussion.pk, world.team_manager)
    outsider = await rooms.open(discussion.pk, restricted)
    await settle(manager, outsider)
    before = await record_rows()
    watch = await db(AuditWatch)()

    for section, version, base in ((hidden_decision, 1, ""), (hidden_worries, 2, SECRET)):
        await outsider.save(section, version=version, base=base, text="Overwritten (OUTSIDER-9).")
        error = await outsider.expect("error")
        assert (error["code"], error["section"]) == ("not_found", section.pk)
        assert error["message"] == "That section cannot be found."
    await outsider.send({"type": "editing", "section": hidden_decision.pk, "active": True})
    assert (await outsider.expect("error"))["code"] == "not_found"

    assert await record_rows() == before
    assert (await fresh(hidden_worries)).text == SECRET
    denied = [e for e in await audit_since(watch) if e.action == AuditAction.ACCESS_DENIED]
    assert [(e.actor_id, e.object_type, e.object_id, e.outcome) for e in denied] == [
        (restricted.pk, "discussion_section", str(hidden_decision.pk), Outcome.DENIED),
        (restricted.pk, "discussion_section", str(hidden_worries.pk), Outcome.DENIED)]
    await manager.assert_nothing()  # nobody was told anything
    await outsider.ping()


async def test_losing_sight_of_an_item_mid_meeting_hides_it_and_stops_its_content(world, rooms):
    keyworker = world.user(Role.SOCIAL_WORKER, 1)
    discussion = await restricted_discussion(world)
    hidden_item = await item_of(discussion, world.other_case)
    hidden_decision = await section_of(discussion, world.other_case, DECISION)
    own_decision = await section_of(discussion, world.case, DECISION)
    manager = await rooms.open(discussion.pk, world.team_manager)
    colleague = await rooms.open(discussion.pk, keyworker)
    await settle(manager, colleague)
    assert str(hidden_item.pk) in colleague.state["items"]

    grant = await db(CaseGrant.objects.get)(case=world.other_case, user=keyworker,
                                            kind=CaseGrant.Kind.KEYWORKER)
    await db(do_remove_keyworker)(acting_user=world.locality_users[Role.TEAM_MANAGER], grant=grant)
    assert await colleague.expect("hidden") == {"type": "hidden", "item": hidden_item.pk}

    await manager.save(hidden_decision, version=1, base="", text="Step down to child in need.")
    assert (await manager.expect("section.saved"))["outcome"] == "saved"
    assert (await manager.expect("section"))["item"] == hidden_item.pk
    await colleague.save(hidden_decision, version=2, base="Step down to child in need.",
                         text="Close the case.")
    assert (await colleague.expect("error"))["code"] == "not_found"
    assert (await fresh(hidden_decision)).text == "Step down to child in need."
    # Still in the room for the item they share, and nothing of the other reached them.
    await barrier(manager, own_decision, "Stay on the plan.", manager, colleague)
    await colleague.send({"type": "resume", "after": 0})
    state = await colleague.expect("state")
    await colleague.expect("synced")
    assert set(state["items"]) == {str(own_decision.item_id)}


# --- 7. refusals ---------------------------------------------------------------------------------

REFUSED = [{"type": "websocket.close", "code": CLOSE_REFUSED}]


async def test_an_anonymous_socket_is_refused_and_audited(world, rooms):
    discussion = await scheduled(world)
    watch = await db(AuditWatch)()
    tab = await rooms.connect(discussion.pk)
    assert CLOSE_REFUSED == 4403
    assert await tab.refusal() == REFUSED
    denied = await audit_since(watch)
    assert [(e.action, e.outcome, e.actor_id, e.object_type, e.object_id) for e in denied] == [
        (AuditAction.ACCESS_DENIED, Outcome.DENIED, None, "discussion", str(discussion.pk))]
    assert await presence_rows(discussion.pk) == 0
    assert await attendance(discussion) == []


async def test_another_teams_member_and_a_missing_discussion_are_refused_alike(world, rooms):
    discussion = await scheduled(world)
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    await rooms.client_for(outsider)
    watch = await db(AuditWatch)()

    forbidden = await (await rooms.connect(discussion.pk, outsider)).refusal()
    missing = await (await rooms.connect(987654321, outsider)).refusal()
    assert forbidden == missing == REFUSED

    denied = [e for e in await audit_since(watch) if e.action == AuditAction.ACCESS_DENIED]
    assert [(e.actor_id, e.object_type, e.object_id, e.outcome) for e in denied] == [
        (outsider.pk, "discussion", str(discussion.pk), Outcome.DENIED),
        (outsider.pk, "discussion", "987654321", Outcome.DENIED)]
    assert AuditAction.DISCUSSION_JOINED not in [e.action for e in await audit_since(watch)]
    assert await presence_rows(discussion.pk) == 0
    assert await attendance(discussion) == []


@db
def finished(world, how: str) -> Discussion:
    discussion = schedule(world)
    tm = world.team_manager
    if how == "cancelled":
        return do_cancel_discussion(acting_user=tm, discussion=discussion)
    discussion = do_start_discussion(acting_user=tm, discussion=discussion)
    decision = Section.objects.get(item__discussion=discussion, kind=DECISION)
    do_save_section(acting_user=tm, section=decision, text="Stay on the plan.", version=1)
    return do_sign_off(acting_user=tm, discussion=discussion)


@pytest.mark.parametrize("how", ["signed_off", "cancelled"])
async def test_a_signed_off_or_cancelled_discussion_is_refused_and_audited(world, rooms, how):
    sw = world.social_worker
    discussion = await finished(world, how)
    assert discussion.status == how
    await rooms.client_for(sw)
    before = await attendance(discussion)
    watch = await db(AuditWatch)()

    assert await (await rooms.connect(discussion.pk, sw)).refusal() == REFUSED

    entries = await audit_since(watch)
    assert [(e.action, e.actor_id, e.object_type, e.object_id, e.outcome) for e in entries] == [
        (AuditAction.ACCESS_DENIED, sw.pk, "discussion", str(discussion.pk), Outcome.DENIED)]
    assert await presence_rows(discussion.pk) == 0
    assert [(a.pk, a.left_at) for a in await attendance(discussion)] == [
        (a.pk, a.left_at) for a in before]


# --- 8. bad input ----------------------------------------------------------------------------------

BAD_FRAMES = {
    "malformed JSON": (lambda s: '{"type": "ping"', "malformed"),
    "empty frame": (lambda s: "", "malformed"),
    "not an object": (lambda s: '["ping"]', "invalid"),
    "unknown type": (lambda s: json.dumps({"type": "section.delete", "section": s}), "unknown_type"),
    "a case room's message": (lambda s: json.dumps({"type": "writing", "active": True}),
                              "unknown_type"),
    "extra field on ping": (lambda s: '{"type": "ping", "is_superuser": true}', "invalid"),
    "extra field on a save": (lambda s: json.dumps({**save_frame(s), "author": 1}), "invalid"),
    "extra field on editing": (
        lambda s: json.dumps({"type": "editing", "section": s, "active": True, "user": 1}),
        "invalid"),
    "version as text": (lambda s: json.dumps(save_frame(s, version="1")), "invalid"),
    "section as text": (lambda s: json.dumps(save_frame(str(s))), "invalid"),
    "version zero": (lambda s: json.dumps(save_frame(s, version=0)), "invalid"),
    "missing base": (lambda s: json.dumps({k: v for k, v in save_frame(s).items() if k != "base"}),
                     "invalid"),
    "oversized text": (
        lambda s: json.dumps(save_frame(s, text="x" * (SECTION_MAX_LENGTH + 501))), "invalid"),
    "oversized base": (
        lambda s: json.dumps(save_frame(s, base="x" * (SECTION_MAX_LENGTH + 501))), "invalid"),
    "oversized frame": (lambda s: "x" * (256 * 1024 + 1), "too_large"),
}


@pytest.mark.parametrize("build,code", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_a_bad_message_gets_an_error_frame_changes_nothing_and_the_socket_survives(
    world, rooms, build, code
):
    discussion = await running(world)
    section = await section_of(discussion, world.case, DECISION)
    tab = await rooms.open(discussion.pk, world.social_worker)
    other = await rooms.open(discussion.pk, world.team_manager)
    await settle(tab, other)
    before = await record_rows()
    audit_before = await db(AuditEvent.objects.count)()

    await tab.send_text(build(section.pk))
    error = await tab.expect("error")
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]

    await tab.ping()
    await other.assert_nothing()
    assert await record_rows() == before
    assert await db(AuditEvent.objects.count)() == audit_before


async def test_a_binary_frame_gets_an_error_frame_and_the_socket_survives(world, rooms):
    discussion = await running(world)
    section = await section_of(discussion, world.case, DECISION)
    tab = await rooms.open(discussion.pk, world.social_worker)
    before = await record_rows()

    await tab.send_bytes(json.dumps(save_frame(section.pk)).encode())
    assert await tab.expect("error") == {"type": "error", "code": "binary",
                                         "message": "Send messages as JSON text."}
    await tab.ping()
    assert await record_rows() == before


@pytest.mark.parametrize("text, message", [
    ("x" * (SECTION_MAX_LENGTH + 1), f"{SECTION_MAX_LENGTH:,} characters or fewer"),
    # PostgreSQL cannot store a NUL: a message, not a failed save.
    ("Remain on the plan.\x00", "hidden control character (NUL)"),
], ids=["too-long", "nul-character"])
async def test_text_a_section_cannot_hold_is_refused_with_a_message(world, rooms, text, message):
    discussion = await running(world)
    section = await section_of(discussion, world.case, DECISION)
    tab = await rooms.open(discussion.pk, world.social_worker)
    before = await record_rows()

    await tab.send(save_frame(section.pk, text=text))
    reply = await tab.expect("section.invalid")
    assert reply["section"] == section.pk
    assert message in reply["message"]
    await tab.ping()
    assert await record_rows() == before


# --- 9. access ending closes the socket ------------------------------------------------------

async def test_ending_a_membership_closes_the_participants_socket(world, rooms):
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    discussion = await running(world)
    section = await section_of(discussion, world.case, DECISION)
    victim_tab = await rooms.open(discussion.pk, victim)
    colleague = await rooms.open(discussion.pk, world.team_manager)
    await settle(victim_tab, colleague)
    watch = await db(AuditWatch)()

    await db(do_end_membership)(acting_user=world.bootstrap_admin,
                                membership=world.memberships[victim.pk])

    assert await victim_tab.closed(timeout=5) == CLOSE_REFUSED
    people = await colleague.presence_update()
    assert [p["user"] for p in people] == [world.team_manager.pk]
    assert await presence_rows(discussion.pk, victim) == 0
    [stint] = await attendance(discussion, victim)
    assert stint.left_at is not None
    left = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_LEFT]
    assert [e.actor_id for e in left] == [victim.pk]

    # Nothing more reaches the closed socket; the room carries on for the others.
    await colleague.save(section, version=1, base="", text="Stay on the plan.")
    assert (await colleague.expect("section.saved"))["outcome"] == "saved"
    await colleague.expect("section")
    await victim_tab.send({"type": "ping"})
    await victim_tab.assert_nothing()


# --- 10. the editing indicator -----------------------------------------------------------------

async def test_editing_reaches_the_others_but_not_the_sender(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    mh = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    discussion = await running(world)
    item = await item_of(discussion, world.case)
    section = await section_of(discussion, world.case, WORRIES)
    writer = await rooms.open(discussion.pk, sw)
    others = [await rooms.open(discussion.pk, tm), await rooms.open(discussion.pk, mh)]
    await settle(writer, *others)
    before = await record_rows()

    await writer.send({"type": "editing", "section": section.pk, "active": True})
    for tab in others:
        assert await tab.expect("editing") == {
            "type": "editing", "item": item.pk, "section": "worries", "user": sw.pk,
            "label": label(sw), "active": True}
    await writer.send({"type": "editing", "section": section.pk, "active": False})
    for tab in others:
        message = await tab.expect("editing")
        assert (message["user"], message["active"]) == (sw.pk, False)

    await writer.assert_nothing()
    await writer.ping()
    assert await record_rows() == before


# --- 11. the record is locked at sign-off --------------------------------------------------------

async def test_saving_after_sign_off_is_refused_with_a_clear_message(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    discussion = await running(world)
    decision = await section_of(discussion, world.case, DECISION)
    worker = await rooms.open(discussion.pk, sw)
    manager = await rooms.open(discussion.pk, tm)
    await settle(worker, manager)
    await worker.save(decision, version=1, base="", text="Stay on the plan.")
    assert (await worker.expect("section.saved"))["outcome"] == "saved"
    for tab in (worker, manager):
        await tab.expect("section")

    await db(do_sign_off)(acting_user=tm, discussion=discussion)
    for tab in (worker, manager):
        message = await tab.expect("status")
        assert (message["status"], message["current"]) == ("signed_off", decision.item_id)
    before = await record_rows()

    # A save the page sent before it heard of the sign-off.
    await worker.save(decision, version=2, base="Stay on the plan.", text="Step down.")
    output = await worker.output()
    assert output["type"] == "websocket.send", (
        f"the save after sign-off should be answered with a message, not {output}")
    reply = json.loads(output["text"])
    assert reply["type"] in ("section.invalid", "error"), reply
    assert reply["message"] == SIGNED_OFF

    current = await fresh(decision)
    assert (current.version, current.text) == (2, "Stay on the plan.")
    assert await record_rows() == before
    await manager.assert_nothing()
