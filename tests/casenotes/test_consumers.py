"""The live case room (ws/cases/<id>/) end to end through `workspace.asgi.application`:
the audited origin check, the session and auth middleware, the router and the consumer.

Each test signs real people in (a session cookie, as a browser has), opens sockets as
their pages would, and proves who receives what: presence, every kind of note at every
sensitivity, catching up after a reconnect, access ending on sockets already open,
refusals that look alike, and bad or excessive input that changes nothing.
"""

import datetime
import json
from html import unescape

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.html import escape, strip_tags

from audit.models import AuditAction, AuditEvent, Outcome
from casenotes import events
from casenotes.actions import (
    do_add_addendum,
    do_add_keyworker,
    do_add_person,
    do_create_note,
    do_end_break_glass,
    do_finalise_note,
    do_open_break_glass,
    do_remove_keyworker,
    do_set_specialist_agency,
    do_update_draft,
)
from casenotes.messages import MAX_FRAME_BYTES
from casenotes.models import CaseEvent, CaseGrant, CaseNote, Person, RoomPresence
from teams.actions import do_end_membership, do_save_membership, do_save_user
from teams.models import Agency, Membership, Role
from tests.casenotes.rooms import (  # noqa: F401 (fixtures)
    CLOSE_REFUSED,
    ORIGIN,
    live_layer_fixture,
    rooms_fixture,
)
from tests.helpers import AuditWatch, write_fingerprint
from workspace.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
S = CaseNote.Sensitivity
MAX_BODY = settings.NOTE_BODY_MAX_LENGTH

STANDARD_TEXT = "Ellie said she feels safe at home now (STANDARD-5521)."
RESTRICTED_TEXT = "Kayleigh's medication changed after the crisis review (RESTRICTED-8813)."
SEALED_TEXT = "Kayleigh's refuge address is 14 Lime Grove (SEALED-3307)."
DRAFT_TEXT = "Half-written visit note, not yet checked (DRAFT-6042)."


# --- helpers ---------------------------------------------------------------------------

@db
def writes() -> dict:
    """Every row a message could write (notes, links, people, addenda, history, audit)
    and the case event numbers."""
    return {**write_fingerprint(), "events": CaseEvent.objects.count()}


@db
def last_seq(case) -> int:
    return events.last_seq(case.pk)


@db
def audit_since(watch: AuditWatch) -> list[AuditEvent]:
    return watch.new()


@db
def presence_rows(case, user=None) -> int:
    rows = RoomPresence.objects.filter(case=case)
    return (rows.filter(user=user) if user is not None else rows).count()


async def settle(*tabs) -> None:
    """Let every presence update already on its way arrive (and nothing else)."""
    for tab in tabs:
        await tab.settle_presence()


async def barrier(world, *tabs, author=None) -> CaseNote:
    """A standard note everyone in the room receives. A tab whose next event is this one
    received nothing in between: channel messages arrive in the order they were sent."""
    note = await db(world.standard_note)(author or world.team_manager, body="Barrier note.")
    for tab in tabs:
        message = await tab.expect("event")
        assert message["note"] == note.pk, f"{tab.user}: expected only the barrier, got {message}"
    return note


def placeholder_text(note: CaseNote, agency_short_name: str) -> str:
    day = dateformat.format(timezone.localtime(note.occurred_at), "j M Y")
    return f"Restricted note — {agency_short_name}, {day}"


def assert_full(message: dict, note: CaseNote, text: str, *, kind="note.created") -> None:
    assert message["type"] == "event"
    assert (message["note"], message["kind"], message["level"]) == (note.pk, kind, "full")
    assert escape(text) in message["html"]


def assert_placeholder(message: dict, note: CaseNote, agency_short_name: str, text: str) -> None:
    assert message["type"] == "event"
    assert (message["note"], message["level"]) == (note.pk, "placeholder")
    assert unescape(strip_tags(message["html"])).strip() == placeholder_text(note, agency_short_name)
    assert text not in json.dumps(message) and escape(text) not in message["html"]
    assert note.get_note_type_display() not in message["html"]


def _written(fingerprint: dict) -> dict:
    return {key: value for key, value in fingerprint.items() if key != "audit"}


async def reply_to(tab, message: dict) -> dict:
    """Send `message` and return its reply, passing over live events around it."""
    await tab.send(message)
    while True:
        frame = await tab.frame()
        if frame["type"] != "event":
            return frame


def draft_save(note=None, version=None, **overrides) -> dict:
    moment = timezone.localtime() - datetime.timedelta(hours=2)
    message = {
        "type": "draft.save", "note": note, "version": version, "note_type": "home_visit",
        "occurred_at": moment.replace(microsecond=0).isoformat(), "body": DRAFT_TEXT,
        "sensitivity": "standard", "is_significant": False, "people": [], "readers": [],
    }
    message.update(overrides)
    return message


def _draft_kwargs(note, **overrides):
    kwargs = {"expected_version": note.version, "note_type": note.note_type,
              "occurred_at": note.occurred_at, "body": note.body, "sensitivity": note.sensitivity}
    kwargs.update(overrides)
    return kwargs


class Room:
    """The usual room for delivery tests: five people of four agencies, the author of
    the note under test with two tabs open."""

    def __init__(self, world, author):
        self.world, self.author = world, author
        self.tabs = []

    async def open(self, rooms) -> "Room":
        w = self.world
        people = [w.user(Role.SOCIAL_WORKER), w.team_manager, w.user(Role.MENTAL_HEALTH_PRACTITIONER),
                  w.user(Role.MENTAL_HEALTH_PRACTITIONER, 1), w.user(Role.PROBATION_OFFICER)]
        if self.author not in people:
            people.append(self.author)
        for user in people:
            self.tabs.append(await rooms.open(w.case.pk, user))
        self.tabs.append(await rooms.open(w.case.pk, self.author))  # the author's second tab
        await settle(*self.tabs)
        return self

    def of(self, user) -> list:
        return [tab for tab in self.tabs if tab.user.pk == user.pk]

    def others(self, *users) -> list:
        excluded = {u.pk for u in users}
        return [tab for tab in self.tabs if tab.user.pk not in excluded]


# --- presence --------------------------------------------------------------------------

async def test_two_people_in_the_room_see_each_other(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    sw_tab = await rooms.open(world.case.pk, sw)
    assert [p["user"] for p in sw_tab.presence] == [sw.pk]

    tm_tab = await rooms.open(world.case.pk, tm)
    everyone = await sw_tab.presence_update()
    assert tm_tab.presence == everyone
    assert {p["user"] for p in everyone} == {sw.pk, tm.pk}
    listed = {p["user"]: p for p in everyone}
    assert listed[tm.pk] == {"user": tm.pk, "name": tm.get_full_name(), "role": "Team manager",
                             "agency": "Children's services"}


async def test_a_person_with_two_tabs_is_listed_once(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    first = await rooms.open(world.case.pk, sw)
    second = await rooms.open(world.case.pk, sw)
    tm_tab = await rooms.open(world.case.pk, tm)
    await settle(first, second, tm_tab)

    for tab in (first, second, tm_tab):
        assert sorted(p["user"] for p in tab.presence) == sorted([sw.pk, tm.pk])
    assert await presence_rows(world.case, sw) == 2  # one row per connection

    await second.disconnect()  # one tab of two closed: still in the room
    assert [p["user"] for p in await tm_tab.presence_update()].count(sw.pk) == 1


async def test_leaving_updates_the_list_and_removes_the_presence_row(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    sw_tab = await rooms.open(world.case.pk, sw)
    tm_tab = await rooms.open(world.case.pk, tm)
    await settle(sw_tab, tm_tab)
    assert await presence_rows(world.case) == 2

    await tm_tab.disconnect()
    assert [p["user"] for p in await sw_tab.presence_update()] == [sw.pk]
    assert await presence_rows(world.case, tm) == 0

    await sw_tab.disconnect()
    assert await presence_rows(world.case) == 0


async def test_joining_the_room_is_audited(world, rooms):
    watch = await db(AuditWatch)()
    await rooms.open(world.case.pk, world.social_worker)
    joined = [e for e in await audit_since(watch) if e.action == AuditAction.LIVE_JOINED]
    assert len(joined) == 1
    assert (joined[0].actor_id, joined[0].case_id) == (world.social_worker.pk, world.case.pk)
    assert joined[0].user_agent == "pytest-live-room"


# --- live notes: who receives what -----------------------------------------------------

async def test_standard_note_reaches_everyone_in_the_room_in_full(world, rooms):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    room = await Room(world, author).open(rooms)
    note = await db(world.standard_note)(author, body=STANDARD_TEXT)
    seq = await last_seq(world.case)

    for tab in room.tabs:
        message = await tab.expect("event")
        assert_full(message, note, STANDARD_TEXT)
        assert message["seq"] == seq
    for tab in room.tabs:
        await tab.assert_nothing()


@pytest.mark.parametrize("author_role", [Role.MENTAL_HEALTH_PRACTITIONER, Role.SOCIAL_WORKER])
async def test_agency_restricted_note_in_full_to_its_agency_and_manager_placeholder_to_others(
    world, rooms, author_role
):
    author = world.user(author_role)
    agency = world.agency_of(author)
    room = await Room(world, author).open(rooms)
    note = await db(world.restricted_note)(author, body=RESTRICTED_TEXT)

    for tab in room.tabs:
        message = await tab.expect("event")
        is_manager = world.memberships[tab.user.pk].role == Role.TEAM_MANAGER
        if tab.user.pk == author.pk or is_manager or world.agency_of(tab.user) == agency:
            assert_full(message, note, RESTRICTED_TEXT)
        else:
            assert_placeholder(message, note, agency.short_name, RESTRICTED_TEXT)
    # Exactly one event each: a manager of the author's own agency is in both audiences.
    await barrier(world, *room.tabs)
    for tab in room.tabs:
        await tab.assert_nothing()


async def test_sealed_note_reaches_its_author_and_named_readers_and_nobody_else(world, rooms):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    reader = world.social_worker
    room = await Room(world, author).open(rooms)
    note = await db(world.sealed_note)(author, readers=[reader], body=SEALED_TEXT)

    for tab in room.of(author) + room.of(reader):
        assert_full(await tab.expect("event"), note, SEALED_TEXT)
    # The team manager and the author's own agency colleague are not named: nothing at all.
    left_out = room.others(author, reader)
    assert {t.user.pk for t in left_out} == {
        world.team_manager.pk, world.user(Role.MENTAL_HEALTH_PRACTITIONER, 1).pk,
        world.user(Role.PROBATION_OFFICER).pk}
    await barrier(world, *room.tabs)
    for tab in room.tabs:
        await tab.assert_nothing()


async def test_a_named_reader_now_on_emergency_access_receives_nothing_of_the_sealed_note(
        world, rooms):
    """A sealed note's full entry goes to each named reader's own group, but the
    connection asks the policy before taking it: a reader who has left the case and
    opened emergency access (standard content only) gets nothing of the note, live,
    when it gains an addendum or when a sealed draft naming them is finalised."""
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    former = world.locality_users[Role.SOCIAL_WORKER]

    @db
    def name_then_remove():
        grant = do_add_keyworker(acting_user=world.team_manager, case=world.case, user=former)
        note = world.sealed_note(author, readers=[former], body=SEALED_TEXT)
        draft = world.draft(author, sensitivity=S.SEALED, readers=[former],
                            body="New address (SEALED-DRAFT-2).")
        do_remove_keyworker(acting_user=world.team_manager, grant=grant)
        do_open_break_glass(acting_user=former, case=world.case,
                            reason_code=CaseGrant.Reason.IMMEDIATE_RISK)
        return note, draft

    note, draft = await name_then_remove()
    tab = await rooms.open(world.case.pk, former)
    assert "SEALED" not in json.dumps(tab.replayed)
    author_tab = await rooms.open(world.case.pk, author)
    await settle(tab, author_tab)
    await db(do_add_addendum)(acting_user=author, note=note, body="Moved again.")
    assert_full(await author_tab.expect("event"), note, SEALED_TEXT, kind="addendum.created")
    await db(do_finalise_note)(acting_user=author, note=draft, expected_version=draft.version)
    assert_full(await author_tab.expect("event"), draft, "SEALED-DRAFT-2", kind="note.finalised")
    await barrier(world, tab, author_tab)
    await tab.assert_nothing()


async def test_a_draft_reaches_only_its_authors_tabs(world, rooms):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    room = await Room(world, author).open(rooms)
    note = await db(world.draft)(author, body=DRAFT_TEXT)

    author_tabs = room.of(author)
    assert len(author_tabs) == 2
    for tab in author_tabs:
        message = await tab.expect("event")
        assert_full(message, note, DRAFT_TEXT)
        assert "Draft" in message["html"]
    await barrier(world, *room.tabs)
    for tab in room.tabs:
        await tab.assert_nothing()


async def test_a_restricted_draft_finalised_appears_to_others_as_a_placeholder(world, rooms):
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    room = await Room(world, author).open(rooms)
    draft = await db(world.draft)(author, sensitivity=S.AGENCY_RESTRICTED, body=RESTRICTED_TEXT)
    for tab in room.of(author):
        await tab.expect("event")

    await db(do_finalise_note)(acting_user=author, note=draft, expected_version=1)
    for tab in room.tabs:
        message = await tab.expect("event")
        assert message["kind"] == "note.finalised"
        if tab.user.pk in {author.pk, world.user(Role.MENTAL_HEALTH_PRACTITIONER, 1).pk,
                           world.team_manager.pk}:
            assert_full(message, draft, RESTRICTED_TEXT, kind="note.finalised")
        else:
            assert_placeholder(message, draft, "NHS mental health", RESTRICTED_TEXT)
    for tab in room.tabs:
        await tab.assert_nothing()


# --- live notes: every way of saving one arrives -----------------------------------------

@pytest.mark.parametrize("intent", ["finalise", "draft"])
async def test_a_note_saved_from_the_page_arrives(world, rooms, intent):
    author, tm = world.social_worker, world.team_manager
    author_tab = await rooms.open(world.case.pk, author)
    tm_tab = await rooms.open(world.case.pk, tm)
    await settle(author_tab, tm_tab)
    moment = timezone.localtime() - datetime.timedelta(hours=1)
    client = await rooms.client_for(author)

    response = await sync_to_async(client.post)(
        reverse("casenotes:note_create", args=[world.case.pk]),
        {"note_type": "home_visit", "occurred_day": str(moment.day),
         "occurred_month": str(moment.month), "occurred_year": str(moment.year),
         "occurred_time": moment.strftime("%H:%M"), "body": STANDARD_TEXT,
         "sensitivity": "standard", "intent": intent},
    )
    assert response.status_code == 302
    note = await db(CaseNote.objects.get)(body=STANDARD_TEXT)

    assert_full(await author_tab.expect("event"), note, STANDARD_TEXT)
    if intent == "finalise":
        assert_full(await tm_tab.expect("event"), note, STANDARD_TEXT)
    else:
        await barrier(world, tm_tab)


async def test_a_draft_saved_over_the_socket_arrives_in_the_authors_other_tabs(world, rooms):
    author, tm = world.social_worker, world.team_manager
    typing_tab = await rooms.open(world.case.pk, author)
    other_tab = await rooms.open(world.case.pk, author)
    tm_tab = await rooms.open(world.case.pk, tm)
    await settle(typing_tab, other_tab, tm_tab)

    await typing_tab.send(draft_save())
    replies = [await typing_tab.frame(), await typing_tab.frame()]
    saved = next(m for m in replies if m["type"] == "draft.saved")
    note = await db(CaseNote.objects.get)(pk=saved["note"])
    assert_full(next(m for m in replies if m["type"] == "event"), note, DRAFT_TEXT)
    assert_full(await other_tab.expect("event"), note, DRAFT_TEXT)
    await barrier(world, tm_tab)


async def test_a_note_saved_by_another_code_path_arrives(world, rooms):
    """A command or the seed calls the action directly: the room hears of it all the same,
    including each later change of the note."""
    author, tm = world.social_worker, world.team_manager
    author_tab = await rooms.open(world.case.pk, author)
    tm_tab = await rooms.open(world.case.pk, tm)
    await settle(author_tab, tm_tab)

    draft = await db(do_create_note)(
        acting_user=author, case=world.case, note_type="phone_call",
        occurred_at=timezone.now() - datetime.timedelta(hours=1), body=DRAFT_TEXT)
    assert_full(await author_tab.expect("event"), draft, DRAFT_TEXT)
    await db(do_update_draft)(acting_user=author, note=draft, **_draft_kwargs(
        draft, body=STANDARD_TEXT, finalise=True))
    for tab in (author_tab, tm_tab):
        assert_full(await tab.expect("event"), draft, STANDARD_TEXT, kind="note.finalised")
    await db(do_add_addendum)(acting_user=tm, note=draft, body="Confirmed with school.")
    for tab in (author_tab, tm_tab):
        message = await tab.expect("event")
        assert (message["kind"], message["note"]) == ("addendum.created", draft.pk)
    await db(do_add_person)(acting_user=author, case=world.case, full_name="Nan Harper",
                            role_in_family=Person.RoleInFamily.GRANDPARENT)
    for tab in (author_tab, tm_tab):
        message = await tab.expect("event")
        assert message == {"type": "event", "seq": await last_seq(world.case), "kind": "person.added"}


async def test_events_of_another_case_never_arrive(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker)
    locality_worker = world.locality_users[Role.SOCIAL_WORKER]
    await db(world.standard_note)(locality_worker, case=world.other_case, body=STANDARD_TEXT)
    await barrier(world, tab)
    await tab.assert_nothing()


# --- catching up after a reconnect ------------------------------------------------------

async def test_reconnecting_page_receives_exactly_the_missed_events_it_may_see(world, rooms):
    viewer = world.user(Role.PROBATION_OFFICER)
    sw, tm = world.social_worker, world.team_manager
    mh = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    tab = await rooms.open(world.case.pk, viewer)
    _, synced = await tab.resume(await last_seq(world.case))
    seen = synced["seq"]
    await tab.disconnect()

    @db
    def while_away():
        standard = world.standard_note(sw, body=STANDARD_TEXT)
        restricted = world.restricted_note(mh, body=RESTRICTED_TEXT)
        world.sealed_note(mh, readers=[sw], body=SEALED_TEXT)            # not shared: never
        shared = world.sealed_note(mh, readers=[viewer], body="Shared sealed (SHARED-1).")
        world.draft(sw, body=DRAFT_TEXT)                                    # someone's draft
        own = world.draft(viewer, body="First words (OWN-1).")
        own = do_update_draft(acting_user=viewer, note=own, **_draft_kwargs(own, body="More (OWN-2)."))
        own = do_update_draft(acting_user=viewer, note=own, **_draft_kwargs(
            own, body="Checked (OWN-3).", finalise=True))
        do_add_person(acting_user=sw, case=world.case, full_name="Nan Harper",
                      role_in_family=Person.RoleInFamily.GRANDPARENT)
        do_add_addendum(acting_user=tm, note=standard, body="Confirmed with school.")
        latest = {}
        for event in CaseEvent.objects.filter(case=world.case, seq__gt=seen).order_by("seq"):
            latest[event.note_id or ("case", event.seq)] = event
        return standard, restricted, shared, own, latest

    standard, restricted, shared, own, latest = await while_away()
    back = await rooms.connect(world.case.pk, user=viewer)
    await back.presence_update()
    replayed, synced = await back.resume(seen)

    expected = sorted([latest[restricted.pk], latest[shared.pk], latest[own.pk],
                       latest[standard.pk], *[e for k, e in latest.items() if isinstance(k, tuple)]],
                      key=lambda e: e.seq)
    assert [(m["seq"], m["kind"], m.get("note")) for m in replayed] == [
        (e.seq, e.kind, e.note_id) for e in expected]
    by_note = {m.get("note"): m for m in replayed}
    assert_placeholder(by_note[restricted.pk], restricted, "NHS mental health", RESTRICTED_TEXT)
    assert_full(by_note[shared.pk], shared, "SHARED-1")
    assert_full(by_note[own.pk], own, "OWN-3", kind="note.finalised")
    assert_full(by_note[standard.pk], standard, STANDARD_TEXT, kind="addendum.created")
    text = json.dumps(replayed)
    assert "SEALED-3307" not in text and "DRAFT-6042" not in text and "RESTRICTED-8813" not in text
    assert synced == {"type": "synced", "seq": expected[-1].seq}
    await back.assert_nothing()


async def test_catching_up_tells_those_outside_a_restricted_note_nothing_of_its_addenda(
        world, rooms):
    """As live: a viewer outside a restricted note's audience is sent its placeholder
    once, as the note first appears, and no word of an addendum to it later, whether
    they were there when it was added or catch up afterwards."""
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    viewer = world.user(Role.PROBATION_OFFICER)
    before = await last_seq(world.case)
    note = await db(world.restricted_note)(author, body=RESTRICTED_TEXT)
    tab = await rooms.open(world.case.pk, viewer, after=before)
    assert [(m["note"], m["kind"], m["level"]) for m in tab.replayed] == [
        (note.pk, "note.created", "placeholder")]
    seen = await last_seq(world.case)
    await tab.disconnect()
    await db(do_add_addendum)(acting_user=author, note=note, body="Dose reviewed (ADD-4410).")

    back = await rooms.open(world.case.pk, viewer, after=seen)
    assert back.replayed == []
    again = await rooms.open(world.case.pk, viewer, after=before)
    assert [(m["note"], m["kind"], m["level"]) for m in again.replayed] == [
        (note.pk, "note.created", "placeholder")]
    assert "ADD-4410" not in json.dumps(again.replayed)


async def test_resuming_up_to_date_replays_nothing(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker, after=None)
    seq = await last_seq(world.case)
    replayed, synced = await tab.resume(seq)
    assert replayed == [] and synced == {"type": "synced", "seq": seq}


async def test_a_page_too_far_behind_is_told_to_reload(world, rooms, monkeypatch):
    monkeypatch.setattr(events, "REPLAY_LIMIT", 3)
    seen = await last_seq(world.case)

    @db
    def notes(n):
        for _ in range(n):
            world.standard_note(world.social_worker)

    await notes(3)  # exactly the limit: replayed
    tab = await rooms.open(world.case.pk, world.team_manager, after=None)
    replayed, synced = await tab.resume(seen)
    assert [m["seq"] for m in replayed] == [seen + 1, seen + 2, seen + 3]

    await notes(1)  # one more than the limit behind
    await tab.expect("event")  # (this tab is live and got it)
    late = await rooms.open(world.case.pk, world.team_manager, after=None)
    replayed, synced = await late.resume(seen)
    assert [m["type"] for m in replayed] == ["reload"]
    assert "Reload the page" in replayed[0]["message"]
    assert synced["type"] == "synced"


async def test_a_page_ahead_of_the_server_is_told_to_reload(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker, after=None)
    replayed, _ = await tab.resume(await last_seq(world.case) + 5)
    assert [m["type"] for m in replayed] == ["reload"]


# --- access ending closes open sockets ----------------------------------------------------

async def _revocation_room(world, rooms, victim):
    victim_tabs = [await rooms.open(world.case.pk, victim), await rooms.open(world.case.pk, victim)]
    colleague = await rooms.open(world.case.pk, world.team_manager)
    await settle(*victim_tabs, colleague)
    return victim_tabs, colleague


async def _assert_revoked(world, victim, victim_tabs, colleague):
    for tab in victim_tabs:
        assert await tab.closed() == CLOSE_REFUSED
    # Nothing further reaches the closed sockets; the room carries on for the others.
    await db(world.standard_note)(world.social_worker, body=STANDARD_TEXT)
    assert_full(await colleague.expect("event"), await db(CaseNote.objects.get)(body=STANDARD_TEXT),
                STANDARD_TEXT)
    for tab in victim_tabs:
        await tab.send({"type": "ping"})
        await tab.assert_nothing()
    # Those who left are no longer shown in the room, and their presence rows are gone.
    await colleague.settle_presence()
    assert victim.pk not in {p["user"] for p in colleague.presence}
    assert await presence_rows(world.case, victim) == 0


async def test_ending_a_membership_closes_the_persons_open_sockets(world, rooms):
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    victim_tabs, colleague = await _revocation_room(world, rooms, victim)
    await db(do_end_membership)(acting_user=world.bootstrap_admin,
                                membership=world.memberships[victim.pk])
    await _assert_revoked(world, victim, victim_tabs, colleague)


async def test_deactivating_an_account_closes_its_open_sockets(world, rooms):
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    victim_tabs, colleague = await _revocation_room(world, rooms, victim)

    @db
    def deactivate():
        user = get_user_model().objects.get(pk=victim.pk)
        user.is_active = False
        do_save_user(acting_user=world.bootstrap_admin, user=user, changed_fields=["is_active"])

    await deactivate()
    await _assert_revoked(world, victim, victim_tabs, colleague)


async def test_ending_an_emergency_access_early_closes_the_persons_open_sockets(world, rooms):
    victim = world.locality_users[Role.SOCIAL_WORKER]
    grant = await db(do_open_break_glass)(acting_user=victim, case=world.case,
                                          reason_code=CaseGrant.Reason.IMMEDIATE_RISK)
    victim_tabs, colleague = await _revocation_room(world, rooms, victim)
    await db(do_end_break_glass)(acting_user=world.team_manager, grant=grant)
    await _assert_revoked(world, victim, victim_tabs, colleague)


async def test_logging_out_closes_the_sessions_open_sockets(world, rooms):
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    victim_tabs, colleague = await _revocation_room(world, rooms, victim)
    watch = await db(AuditWatch)()
    await sync_to_async(rooms.clients[victim.pk].logout)()
    assert AuditAction.LOGOUT in [e.action for e in await audit_since(watch)]
    await _assert_revoked(world, victim, victim_tabs, colleague)


async def test_access_ending_by_date_alone_closes_sockets_at_the_next_recheck(
    world, rooms, settings, monkeypatch
):
    """A membership with an end date in the future: no action runs when the day comes,
    so only the periodic re-check can notice."""
    settings.LIVE_RECHECK_SECONDS = 0.2
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    today = timezone.localdate()

    @db
    def end_tomorrow():
        membership = Membership.objects.get(pk=world.memberships[victim.pk].pk)
        membership.end_date = today + datetime.timedelta(days=1)
        do_save_membership(acting_user=world.bootstrap_admin, membership=membership)

    await end_tomorrow()
    victim_tabs, colleague = await _revocation_room(world, rooms, victim)
    for tab in victim_tabs:
        await tab.ping()  # still in force today

    real_localdate = timezone.localdate
    monkeypatch.setattr(timezone, "localdate", lambda *a, **kw: real_localdate(*a, **kw)
                        + datetime.timedelta(days=1))
    await _assert_revoked(world, victim, victim_tabs, colleague)


async def test_every_message_rechecks_access(world, rooms, monkeypatch):
    """Even if the pushed re-check never arrives (a lost notice), the next message from
    the socket finds the access gone: refused, and the message is not handled."""
    import teams.actions

    monkeypatch.setattr(teams.actions, "notify_access_changed", lambda user_id: None)
    victim = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    tab = await rooms.open(world.case.pk, victim)
    await db(do_end_membership)(acting_user=world.bootstrap_admin,
                                membership=world.memberships[victim.pk])
    before = await writes()
    await tab.send(draft_save())
    assert await tab.closed() == CLOSE_REFUSED
    after = await writes()
    assert after["notes"] == before["notes"] and after["events"] == before["events"]


@pytest.mark.parametrize("change", ["manager_becomes_practitioner", "moves_agency"])
async def test_a_changed_role_or_agency_changes_what_an_open_socket_receives(world, rooms, change):
    """Access re-checked on an open socket moves it between audiences: a manager who
    steps down no longer receives other agencies' restricted notes in full."""
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    if change == "manager_becomes_practitioner":
        person = world.team_manager
    else:
        person = world.user(Role.PROBATION_OFFICER)
    tab = await rooms.open(world.case.pk, person)
    author_tab = await rooms.open(world.case.pk, author)
    await settle(tab, author_tab)

    @db
    def change_membership():
        membership = Membership.objects.get(pk=world.memberships[person.pk].pk)
        if change == "manager_becomes_practitioner":
            membership.role = Role.SOCIAL_WORKER
        else:
            membership.agency = world.agency_of(author)
        do_save_membership(acting_user=world.bootstrap_admin, membership=membership)

    await change_membership()
    await tab.ping()  # the re-check has been handled

    note = await db(world.restricted_note)(author, body=RESTRICTED_TEXT)
    message = await tab.expect("event")
    if change == "manager_becomes_practitioner":
        assert_placeholder(message, note, "NHS mental health", RESTRICTED_TEXT)
    else:
        assert_full(message, note, RESTRICTED_TEXT)  # now of the author's agency
        probation_note = await db(world.restricted_note)(
            world.user(Role.PROBATION_OFFICER, 1), body="Licence condition (PROBATION-77).")
        assert_placeholder(await tab.expect("event"), probation_note, "Probation", "PROBATION-77")
    await barrier(world, tab)
    await tab.assert_nothing()


async def test_a_notice_already_on_its_way_when_access_ends_is_dropped(world, rooms):
    victim = world.user(Role.PROBATION_OFFICER)
    tab = await rooms.open(world.case.pk, victim)
    channel = await db(lambda: RoomPresence.objects.get(user=victim).channel_name)()
    await db(do_end_membership)(acting_user=world.bootstrap_admin,
                                membership=world.memberships[victim.pk])
    assert await tab.closed() == CLOSE_REFUSED

    layer = get_channel_layer()
    for message in [
        {"type": "case.event", "seq": 999, "kind": "note.created", "note": 1, "level": "full",
         "html": RESTRICTED_TEXT},
        {"type": "case.event", "seq": 1000, "kind": "note.created", "note": 2,
         "level": "placeholder", "html": "x", "facts": {
             "case": world.case.pk, "author": -1, "state": "final", "sensitivity": "agency_restricted",
             "restricted_agency": None, "author_agency": -1, "readers": []}},
        {"type": "room.presence", "people": []},
        {"type": "room.writing", "user": -1, "label": "x", "active": True},
        {"type": "access.recheck"},
    ]:
        await layer.send(channel, message)
    await tab.assert_nothing(0.5)
    await tab.disconnect()  # raises if the consumer crashed on any of them


# --- refusals look alike, and are audited -----------------------------------------------

async def _refusal(tab) -> list[dict]:
    """Every output after the accept, up to the close."""
    outputs = []
    while True:
        output = await tab.output()
        outputs.append(output)
        if output["type"] == "websocket.close":
            return outputs


@pytest.mark.parametrize("origin", ["http://evil.example", "https://localhost.evil.example", None],
                         ids=["foreign", "lookalike", "missing"])
async def test_a_socket_from_a_foreign_or_missing_origin_is_refused_and_audited(world, rooms, origin):
    client = await rooms.client_for(world.social_worker)
    watch = await db(AuditWatch)()
    tab = await rooms.connect(world.case.pk, client=client, origin=origin)
    assert await _refusal(tab) == [{"type": "websocket.close", "code": CLOSE_REFUSED}]

    entries = await audit_since(watch)
    assert [(e.action, e.outcome, e.object_type) for e in entries] == [
        (AuditAction.ACCESS_DENIED, Outcome.DENIED, "socket")]
    assert repr(origin) in entries[0].reason
    assert await presence_rows(world.case) == 0


async def test_an_anonymous_socket_is_refused_and_audited(world, rooms):
    watch = await db(AuditWatch)()
    tab = await rooms.connect(world.case.pk)
    assert await _refusal(tab) == [{"type": "websocket.close", "code": CLOSE_REFUSED}]
    entries = await audit_since(watch)
    assert [(e.action, e.outcome, e.actor_id, e.object_id) for e in entries] == [
        (AuditAction.ACCESS_DENIED, Outcome.DENIED, None, str(world.case.pk))]


async def test_a_forged_session_cookie_is_refused_like_no_session(world, rooms):
    watch = await db(AuditWatch)()
    communicator = WebsocketCommunicator(application, f"/ws/cases/{world.case.pk}/", headers=[
        (b"origin", ORIGIN.encode()),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-real-session-key".encode())])
    connected, _ = await communicator.connect()
    try:
        assert connected
        assert await communicator.receive_output() == {"type": "websocket.close",
                                                       "code": CLOSE_REFUSED}
    finally:
        await communicator.disconnect()
    assert [(e.action, e.actor_id) for e in await audit_since(watch)] == [
        (AuditAction.ACCESS_DENIED, None)]


async def test_a_case_one_may_not_see_and_a_missing_case_are_refused_alike(world, rooms):
    user = world.social_worker
    await rooms.client_for(user)
    watch = await db(AuditWatch)()
    forbidden = await _refusal(await rooms.connect(world.other_case.pk, user=user))
    missing = await _refusal(await rooms.connect(987654321, user=user))
    assert forbidden == missing == [{"type": "websocket.close", "code": CLOSE_REFUSED}]

    denied = [e for e in await audit_since(watch) if e.action == AuditAction.ACCESS_DENIED]
    assert [(e.actor_id, e.object_id, e.outcome) for e in denied] == [
        (user.pk, str(world.other_case.pk), Outcome.DENIED), (user.pk, "987654321", Outcome.DENIED)]
    assert await db(RoomPresence.objects.count)() == 0


@pytest.mark.parametrize("role", [Role.IG_OFFICER, Role.ADMINISTRATOR])
async def test_organisation_roles_cannot_open_a_case_room(world, rooms, role):
    tab = await rooms.connect(world.case.pk, user=world.user(role))
    assert await _refusal(tab) == [{"type": "websocket.close", "code": CLOSE_REFUSED}]


async def test_any_other_socket_path_is_refused_alike(world, rooms):
    tab = await rooms.connect(0, user=world.social_worker, path="/ws/anything/")
    assert await _refusal(tab) == [{"type": "websocket.close", "code": CLOSE_REFUSED}]


# --- bad input: an error frame, nothing written, the connection survives -------------------

BAD_FRAMES = {
    "unknown type": ('{"type": "note.delete", "note": 1}', "unknown_type"),
    "no type": ('{"after": 1}', "unknown_type"),
    "missing field": ('{"type": "writing"}', "invalid"),
    "extra field": ('{"type": "ping", "is_superuser": true}', "invalid"),
    "wrong type": ('{"type": "writing", "active": "yes"}', "invalid"),
    "number as text": ('{"type": "resume", "after": "3"}', "invalid"),
    "negative number": ('{"type": "resume", "after": -1}', "invalid"),
    "not an object": ('["ping"]', "invalid"),
    "malformed JSON": ('{"type": "ping"', "malformed"),
    "empty frame": ("", "malformed"),
    "oversized frame": ("x" * (MAX_FRAME_BYTES + 1), "too_large"),
    "oversized body": (json.dumps(draft_save(body="x" * (MAX_BODY + 1001))), "invalid"),
    "draft with an extra field": (json.dumps({**draft_save(), "author": 1}), "invalid"),
    "draft with a text id": (json.dumps(draft_save(note="1")), "invalid"),
}


@pytest.mark.parametrize("frame,code", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_a_bad_message_gets_an_error_frame_writes_nothing_and_the_connection_survives(
    world, rooms, frame, code
):
    tab = await rooms.open(world.case.pk, world.social_worker)
    before = await writes()
    await tab.send_text(frame)
    error = await tab.expect("error")
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    await tab.ping()
    assert await writes() == before


async def test_a_binary_frame_gets_an_error_frame_and_the_connection_survives(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker)
    before = await writes()
    await tab.send_bytes(b'{"type": "ping"}')
    assert await tab.expect("error") == {"type": "error", "code": "binary",
                                         "message": "Send messages as JSON text."}
    await tab.ping()
    assert await writes() == before


async def test_a_message_before_resume_is_refused_and_resume_still_works(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker, after=None)
    before = await writes()
    for message in ({"type": "ping"}, draft_save()):
        await tab.send(message)
        assert (await tab.expect("error"))["code"] == "out_of_order"
    assert await writes() == before
    _, synced = await tab.resume(await last_seq(world.case))
    assert synced["type"] == "synced"
    await tab.ping()


async def test_too_many_messages_are_refused_with_a_clear_message_and_the_connection_survives(
    world, rooms, settings
):
    settings.LIVE_RATE_BURST = 4
    settings.LIVE_RATE_PER_SECOND = 1.0
    tab = await rooms.open(world.case.pk, world.social_worker)  # resume took one
    before = await writes()
    for _ in range(3):
        await tab.send({"type": "ping"})
    await tab.send(draft_save())
    await tab.send({"type": "ping"})
    replies = [await tab.frame() for _ in range(5)]
    assert [r["type"] for r in replies[:3]] == ["pong"] * 3
    for refused in replies[3:]:
        assert refused == {"type": "error", "code": "rate_limited",
                           "message": "Too many messages: wait a few seconds and try again."}
    assert await writes() == before  # the draft sent while limited was not saved

    await tab.communicator.receive_nothing(1.1)  # a second: one message allowed again
    await tab.ping()


# --- autosave ------------------------------------------------------------------------------

async def test_autosave_creates_a_draft_then_updates_it_by_version(world, rooms):
    author = world.social_worker
    tab = await rooms.open(world.case.pk, author)
    watch = await db(AuditWatch)()

    await tab.send(draft_save(body="First words."))
    saved = await tab.expect("draft.saved")
    assert saved["version"] == 1 and saved["saved_at"]
    await tab.expect("event")

    await tab.send(draft_save(note=saved["note"], version=1, body="First words, and more."))
    again = await tab.expect("draft.saved")
    assert (again["note"], again["version"]) == (saved["note"], 2)
    await tab.expect("event")

    @db
    def stored():
        note = CaseNote.objects.get(pk=saved["note"])
        return note, [h.history_user_id for h in note.history.order_by("history_id")]

    note, history_users = await stored()
    assert (note.body, note.version, note.state, note.author_id) == (
        "First words, and more.", 2, CaseNote.State.DRAFT, author.pk)
    assert history_users == [author.pk, author.pk]
    # Each save, then its delivery to the author's own open tab (audited before sending).
    assert [e.action for e in await audit_since(watch)] == [
        AuditAction.NOTE_CREATED, AuditAction.LIVE_DELIVERED,
        AuditAction.NOTE_UPDATED, AuditAction.LIVE_DELIVERED]


async def test_autosave_with_a_stale_version_returns_the_current_text_and_overwrites_nothing(
    world, rooms
):
    author = world.social_worker
    tab = await rooms.open(world.case.pk, author)
    draft = await db(world.draft)(author, body="Saved from the other tab.")
    await tab.expect("event")
    await db(do_update_draft)(acting_user=author, note=draft, **_draft_kwargs(
        draft, body="Saved again from the other tab."))
    await tab.expect("event")

    before = await writes()
    await tab.send(draft_save(note=draft.pk, version=1, body="Typed here, based on version 1."))
    conflict = await tab.expect("draft.conflict")
    assert (conflict["note"], conflict["version"], conflict["body"]) == (
        draft.pk, 2, "Saved again from the other tab.")
    assert "changed elsewhere" in conflict["message"]
    assert await writes() == before
    await tab.assert_nothing()


@pytest.mark.parametrize("overrides,field,message", [
    ({"occurred_at": (timezone.localtime() + datetime.timedelta(days=2)).isoformat()},
     "occurred_at", "must be in the past"),
    ({"body": "   "}, "body", "Enter the note."),
    ({"body": "x" * (MAX_BODY + 1)}, "body", f"{MAX_BODY:,} characters or fewer"),
    ({"occurred_at": "yesterday"}, "occurred_at", "Enter the date and time this happened."),
    ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at", ""),
    ({"note_type": "gossip"}, "note_type", "Choose the type of note."),
    ({"sensitivity": "public"}, "sensitivity", "Choose who may read this note."),
    ({"readers": [1]}, "readers", ""),
    ({"people": [987654]}, "people", "Choose people from this family only."),
    # PostgreSQL cannot store a NUL: refused as a message, not failed as a save.
    ({"body": "Seen at home.\x00"}, "body", "hidden control character (NUL)"),
], ids=["future", "empty", "too-long", "not-a-date", "out-of-range-date", "type", "sensitivity",
        "readers-on-standard", "unknown-person", "nul-character"])
async def test_autosave_of_bad_input_is_refused_with_a_message_and_writes_nothing(
    world, rooms, overrides, field, message
):
    tab = await rooms.open(world.case.pk, world.social_worker)
    before = await writes()
    await tab.send(draft_save(**overrides))
    invalid = await tab.expect("draft.invalid")
    assert field in invalid["errors"]
    assert message in " ".join(invalid["errors"][field])
    assert invalid["message"].startswith("Not saved yet: ")
    assert await writes() == before
    await tab.ping()


async def test_autosave_of_a_person_from_another_family_is_refused(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker)
    before = await writes()
    await tab.send(draft_save(people=[world.other_people["kwame"].pk]))
    assert (await tab.expect("draft.invalid"))["errors"] == {
        "people": ["Choose people from this family only."]}
    assert await writes() == before


async def test_autosave_of_a_finalised_note_is_refused_with_a_message(world, rooms):
    author = world.social_worker
    tab = await rooms.open(world.case.pk, author)
    note = await db(world.standard_note)(author)
    await tab.expect("event")
    before = await writes()
    await tab.send(draft_save(note=note.pk, version=note.version))
    invalid = await tab.expect("draft.invalid")
    assert "finalised" in invalid["message"]
    assert await writes() == before


@pytest.mark.parametrize("whose", ["someone_elses_draft", "restricted_placeholder",
                                   "sealed_not_shared", "another_cases_note", "missing"])
async def test_autosave_of_a_note_one_may_not_edit_is_not_found_and_audited(world, rooms, whose):
    user = world.social_worker
    mh = world.user(Role.MENTAL_HEALTH_PRACTITIONER)

    @db
    def target():
        if whose == "someone_elses_draft":
            return world.draft(world.user(Role.SOCIAL_WORKER, 1)).pk
        if whose == "restricted_placeholder":
            return world.restricted_note(mh).pk
        if whose == "sealed_not_shared":
            return world.sealed_note(mh).pk
        if whose == "another_cases_note":
            return world.draft(world.locality_users[Role.SOCIAL_WORKER], case=world.other_case).pk
        return 987654321

    note_id = await target()
    tab = await rooms.open(world.case.pk, user, after=await last_seq(world.case))
    before = await writes()
    watch = await db(AuditWatch)()
    await tab.send(draft_save(note=note_id, version=1, body="Overwritten?"))
    assert await tab.expect("error") == {"type": "error", "code": "not_found",
                                         "message": "That note cannot be found."}
    after = await writes()
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"}
    denied = await audit_since(watch)
    assert [(e.action, e.outcome, e.actor_id, e.object_type, e.object_id) for e in denied] == [
        (AuditAction.ACCESS_DENIED, Outcome.DENIED, user.pk, "note", str(note_id))]
    await tab.ping()


# --- writing indicator -----------------------------------------------------------------------

async def test_the_writing_indicator_reaches_others_but_not_the_sender(world, rooms):
    sw, tm = world.social_worker, world.team_manager
    writer = await rooms.open(world.case.pk, sw)
    writer_other_tab = await rooms.open(world.case.pk, sw)
    watcher = await rooms.open(world.case.pk, tm)
    await settle(writer, writer_other_tab, watcher)
    before = await writes()

    await writer.send({"type": "writing", "active": True})
    assert await watcher.expect("writing") == {
        "type": "writing", "user": sw.pk, "active": True,
        "label": f"{sw.first_name} (Children's services)"}
    await writer.send({"type": "writing", "active": False})
    assert (await watcher.expect("writing"))["active"] is False
    await writer.assert_nothing()
    await writer_other_tab.assert_nothing()
    assert await writes() == before


# --- catch-up past what one may not see, and retried autosaves ---------------------------

async def test_events_one_may_not_see_do_not_count_towards_reload_and_are_stepped_past(
    world, rooms, monkeypatch
):
    monkeypatch.setattr(events, "REPLAY_LIMIT", 3)
    seen = await last_seq(world.case)

    @db
    def colleague_autosaves(n):
        draft = world.draft(world.social_worker, body="Autosaved words.")
        for i in range(n):
            draft = do_update_draft(acting_user=world.social_worker, note=draft,
                                    **_draft_kwargs(draft, body=f"Autosaved words {i}."))

    await colleague_autosaves(10)  # 11 events the manager may not see
    tab = await rooms.open(world.case.pk, world.team_manager, after=None)
    replayed, synced = await tab.resume(seen)
    assert replayed == []
    assert synced == {"type": "synced", "seq": await last_seq(world.case)}


async def test_an_autosave_sent_again_after_a_lost_reply_updates_the_same_draft(world, rooms):
    author = world.social_worker
    tab = await rooms.open(world.case.pk, author)
    ref = "5f0c1f9e-2b7a-4c1e-9a61-0d2a3c4b5e6f"
    await tab.send(draft_save(body="First words.", client_ref=ref))
    first = await tab.expect("draft.saved")
    await tab.expect("event")
    # The reply was lost: the page sends the same new-draft save again, with more text.
    await tab.send(draft_save(body="First words, then more.", client_ref=ref))
    second = await tab.expect("draft.saved")
    await tab.expect("event")

    @db
    def drafts():
        return list(CaseNote.objects.filter(author=author, client_ref=ref).values_list(
            "pk", "version", "body"))

    assert second["note"] == first["note"]
    assert await drafts() == [(first["note"], 2, "First words, then more.")]


async def test_autosave_keeps_a_drafts_limit_to_an_adults_specialist_agency(world, rooms):
    """The autosave carries "limit to this adult's specialist agency": saving the draft
    keeps it (else the finalised note would go to the author's agency); a save that
    leaves the field out keeps the draft's choice; null is "No: the author's agency"."""
    author, dean = world.social_worker, world.people["dean"]
    da_service = world.agencies[Agency.Kind.DOMESTIC_ABUSE]
    await db(do_set_specialist_agency)(acting_user=author, person=dean, agency=da_service)
    tab = await rooms.open(world.case.pk, author)
    limited = dict(sensitivity=S.AGENCY_RESTRICTED, people=[dean.pk], restricted_person=dean.pk)
    saved = await reply_to(tab, draft_save(**limited))

    @db
    def stored():
        return CaseNote.objects.values_list("restricted_person_id", "restricted_agency_id",
                                            "version").get(pk=saved["note"])

    assert await stored() == (dean.pk, da_service.pk, 1)
    left_out = {k: v for k, v in limited.items() if k != "restricted_person"}
    await reply_to(tab, draft_save(note=saved["note"], version=1, body="More.", **left_out))
    assert await stored() == (dean.pk, da_service.pk, 2)
    await reply_to(tab, draft_save(note=saved["note"], version=2, body="More.",
                                      **{**limited, "restricted_person": None}))
    assert await stored() == (None, None, 3)
    refused = await reply_to(tab, draft_save(note=saved["note"], version=3, **{
        **limited, "restricted_person": world.other_people["kwame"].pk}))
    assert refused["type"] == "draft.invalid"
    assert refused["errors"] == {
        "restricted_person": ["Choose an adult in this family with a specialist agency."]}
    assert await stored() == (None, None, 3)


@pytest.mark.parametrize("lost", ["new_draft", "existing_draft"])
async def test_an_autosave_whose_text_is_already_saved_is_answered_saved_not_changed_elsewhere(
        world, rooms, lost):
    """Replies lost on a flaky connection: the page sends again a save the server already
    has. The same text is answered "saved" at the draft's version, not shown to the
    person as a change made elsewhere (nor, for a new draft, stuck in conflicts)."""
    author = world.social_worker
    tab = await rooms.open(world.case.pk, author)
    ref = "9b2d4c6e-1a3f-4e5d-8c7b-6a5f4e3d2c1b"
    first = await reply_to(tab, draft_save(body="First words.", client_ref=ref))
    sent = draft_save(note=first["note"], version=1, body="Then more.")
    second = await reply_to(tab, sent)
    assert second["version"] == 2
    if lost == "new_draft":  # neither reply arrived: the page still has no note id
        again = {**sent, "note": None, "version": None, "client_ref": ref}
    else:  # the second reply did not arrive
        again = sent
    before = await writes()
    answer = await reply_to(tab, again)
    assert (answer["type"], answer["note"], answer["version"]) == ("draft.saved", first["note"], 2)
    # Nothing written (the audit entry of the earlier save's live notice may still be on
    # its way through Redis, so the audit trail is left out of the comparison).
    assert _written(await writes()) == _written(before)
    # Different text on an old version is still a conflict, with the draft to adopt.
    other = await reply_to(tab, {**again, "body": "Something else."})
    assert (other["type"], other["note"], other["version"]) == ("draft.conflict", first["note"], 2)


async def test_a_late_autosave_of_a_note_its_form_already_added_adds_nothing(world, rooms):
    """The page's form was sent (and added the note, with the page's key) before the
    page's first autosave arrived: that save finds the note, is refused as final, and
    adds no draft beside it."""
    author = world.social_worker
    ref = "0d9c8b7a-6f5e-4d3c-2b1a-9f8e7d6c5b4a"
    note = await db(do_create_note)(
        acting_user=author, case=world.case, note_type="home_visit", body="From the form.",
        occurred_at=timezone.now() - datetime.timedelta(hours=1), finalise=True, client_ref=ref)
    tab = await rooms.open(world.case.pk, author)
    before = await writes()
    answer = await reply_to(tab, draft_save(body="From the form.", client_ref=ref))
    assert answer["type"] == "draft.invalid"
    assert "finalised" in answer["message"]
    assert await writes() == before
    assert await db(lambda: list(CaseNote.objects.filter(author=author, client_ref=ref)
                                 .values_list("pk", flat=True)))() == [note.pk]


async def test_a_client_ref_of_the_wrong_shape_is_refused(world, rooms):
    tab = await rooms.open(world.case.pk, world.social_worker)
    before = await writes()
    await tab.send(draft_save(client_ref="x; DROP TABLE"))
    error = await tab.expect("error")
    assert error["code"] == "invalid"
    assert await writes() == before
