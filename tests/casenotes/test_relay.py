"""The room relay (casenotes/relay.py): a server process joins each room audience's
group once, with one channel of its own, and hands each notice to its connections in
that audience. A notice is one channel-layer message per process, however many tabs
that process has open on the room."""

import asyncio
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from casenotes import relay
from casenotes.consumers import hand_to
from casenotes.models import CaseNote
from teams.models import Role
from tests.casenotes.rooms import forget_groups, live_layer_fixture, rooms_fixture  # noqa: F401
from workspace import live

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
S = CaseNote.Sensitivity


async def _members(layer, group: str) -> set[str]:
    """The channels in `group`, on the in-memory layer or on Redis."""
    if hasattr(layer, "groups"):
        return set(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))
    return {m.decode() for m in await connection.zrange(layer._group_key(group), 0, -1)}


async def test_a_room_has_one_member_per_process_however_many_tabs_it_has_open(world, rooms):
    layer = get_channel_layer()
    users = [world.social_worker, world.team_manager, world.user(Role.PROBATION_OFFICER)]
    tabs = [await rooms.open(world.case.pk, user) for user in users]
    the_relay = relay.for_this_loop(layer, hand_to)

    assert await _members(layer, live.case_group(world.case.pk)) == {the_relay.channel}
    for user in users:  # each person's own audience too
        assert await _members(layer, live.viewer_group(world.case.pk, user.pk)) == {
            the_relay.channel}

    note = await db(world.standard_note)(world.social_worker)
    for tab in tabs:
        event = await tab.expect("event")
        assert (event["note"], event["level"]) == (note.pk, "full")
        assert "group" not in event  # the audience's name stays on the server


async def test_the_process_leaves_a_group_when_its_last_tab_in_that_audience_closes(world, rooms):
    layer = get_channel_layer()
    case = world.case.pk
    worker = await rooms.open(case, world.social_worker)
    manager = await rooms.open(case, world.team_manager)
    the_relay = relay.for_this_loop(layer, hand_to)
    channel = the_relay.channel

    await manager.disconnect()
    assert await _members(layer, live.managers_group(case)) == set()
    assert await _members(layer, live.viewer_group(case, world.team_manager.pk)) == set()
    assert await _members(layer, live.case_group(case)) == {channel}  # the worker is still in

    await worker.disconnect()
    assert await _members(layer, live.case_group(case)) == set()
    assert the_relay.members == {}
    assert the_relay.task is None  # no room open in this process: it stops listening


async def test_each_tab_gets_its_room_notices_in_order_when_many_come_at_once(world, rooms):
    author = world.user(Role.PROBATION_OFFICER)
    tabs = [await rooms.open(world.case.pk, user)
            for user in (world.social_worker, world.user(Role.PROBATION_OFFICER, 1))]

    def burst():
        # standard, agency-restricted (full to one tab, a placeholder to the other) and a
        # change of the case, each in its own transaction, one straight after another
        return [world.note(author, sensitivity=sensitivity)
                for sensitivity in (S.STANDARD, S.AGENCY_RESTRICTED, S.STANDARD,
                                    S.AGENCY_RESTRICTED, S.STANDARD)]

    notes = await db(burst)()
    for tab in tabs:
        got = [await tab.expect("event") for _ in notes]
        assert [e["note"] for e in got] == [n.pk for n in notes]
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)


async def test_a_tab_whose_sending_fails_does_not_keep_a_notice_from_the_others(
    world, rooms, caplog
):
    layer = get_channel_layer()
    broken = await rooms.open(world.case.pk, world.team_manager)
    first = await rooms.open(world.case.pk, world.social_worker)
    last = await rooms.open(world.case.pk, world.user(Role.PROBATION_OFFICER))
    the_relay = relay.for_this_loop(layer, hand_to)
    (manager_connection,) = the_relay.members[live.managers_group(world.case.pk)]

    async def fails(text):
        raise RuntimeError("a fault in one connection")

    manager_connection.send_text = fails
    with caplog.at_level(logging.ERROR, logger="casenotes.consumers"):
        note = await db(world.standard_note)(world.social_worker)
        assert (await first.expect("event"))["note"] == note.pk
        assert (await last.expect("event"))["note"] == note.pk
    assert any("could not be sent on a connection" in r.getMessage() for r in caplog.records)
    await broken.assert_nothing(0.3)


async def test_a_process_whose_groups_the_layer_forgot_joins_them_again_at_the_next_check(
    world, rooms, settings
):
    settings.LIVE_RECHECK_SECONDS = 0.4
    layer = get_channel_layer()
    tab = await rooms.open(world.case.pk, world.social_worker)
    the_relay = relay.for_this_loop(layer, hand_to)
    group = live.case_group(world.case.pk)

    await forget_groups(layer)
    assert await _members(layer, group) == set()
    for _ in range(50):
        await asyncio.sleep(0.05)
        if await _members(layer, group) == {the_relay.channel}:
            break
    assert await _members(layer, group) == {the_relay.channel}

    note = await db(world.standard_note)(world.team_manager)
    assert (await tab.expect("event"))["note"] == note.pk


class _FlakyLayer:
    """A channel layer whose first receive fails as an unreachable Redis does."""

    def __init__(self, message):
        self.message, self.calls = message, 0

    async def new_channel(self):
        return "specific.test!relay"

    async def group_add(self, group, channel):
        pass

    async def receive(self, channel):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("Redis is restarting")
        if self.calls == 2:
            return self.message
        await asyncio.Event().wait()  # nothing more


async def test_the_relay_keeps_listening_when_the_layer_fails_and_logs_it_once(
    monkeypatch, caplog
):
    monkeypatch.setattr(relay, "RETRY_SECONDS", 0.01)
    notice = {"type": "case.event", "seq": 1, "kind": "case.updated", "group": "case.1"}
    layer, handed = _FlakyLayer(notice), []

    async def hand_to(pairs):
        handed.extend(pairs)

    room_relay, connection = relay.RoomRelay(layer, hand_to), object()
    with caplog.at_level(logging.WARNING, logger="casenotes.relay"):
        await room_relay.join("case.1", connection)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if handed:
                break
    room_relay._stop()
    assert handed == [(notice, [connection])]
    warnings = [r for r in caplog.records if r.name == "casenotes.relay"]
    assert len(warnings) == 1 and "waiting for the channel layer" in warnings[0].getMessage()


class _DownLayer(_FlakyLayer):
    """Redis gone while a connection joins."""

    async def group_add(self, group, channel):
        raise ConnectionError("Redis is down")


async def test_a_connection_whose_joining_fails_is_not_kept_by_the_relay():
    async def hand_to(pairs):
        raise AssertionError("nothing should be handed out")

    room_relay = relay.RoomRelay(_DownLayer(None), hand_to)
    with pytest.raises(ConnectionError):
        await room_relay.join("case.1", object())
    assert room_relay.members == {}
    assert room_relay.task is None  # nothing open: not listening either
