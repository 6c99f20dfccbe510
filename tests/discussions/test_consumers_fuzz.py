"""Random input thrown at an open discussion room: random JSON, messages with a real or
invented type and random fields, section saves of the right shape for sections that do
not exist, and raw text and binary frames.

Whatever arrives, the consumer never fails, never changes the record (sections, their
versions, kept texts, actions, attendance), never answers "something went wrong" (bad
input gets its own error), and stays open: a ping afterwards gets its pong.
"""

import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discussions.actions import do_start_discussion
from discussions.models import AgreedAction, Attendance, KeptText, Section
from tests.casenotes.rooms import live_layer_fixture  # noqa: F401
from tests.discussions.conftest import schedule
from tests.discussions.test_consumers import Rooms

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

SERVER_FRAMES = {"error", "state", "synced", "pong", "presence", "editing", "section",
                 "section.saved", "section.invalid", "actions", "kept", "agenda", "status", "hidden"}
TYPES = ["resume", "ping", "section.save", "editing"]
FIELDS = ["type", "after", "section", "version", "base", "text", "active"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=10), children, max_size=4),
                           max_leaves=20)
typed_messages = st.builds(lambda kind, fields: {**fields, "type": kind},
                           st.sampled_from(TYPES) | st.text(max_size=15),
                           st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12),
                                           json_values, max_size=6))
#: Saves of exactly the right shape for sections that do not exist (ids far above any).
missing_sections = st.integers(min_value=10**9, max_value=2**63 - 1)
well_formed = st.one_of(
    st.fixed_dictionaries({"type": st.just("section.save"), "section": missing_sections,
                           "version": st.integers(min_value=1, max_value=2**31 - 1),
                           "base": st.text(max_size=100), "text": st.text(max_size=200)}),
    st.fixed_dictionaries({"type": st.just("editing"), "section": missing_sections,
                           "active": st.booleans()}),
)
frames = st.one_of(
    json_values.map(lambda v: ("text", json.dumps(v))),
    typed_messages.map(lambda m: ("text", json.dumps(m))),
    well_formed.map(lambda m: ("text", json.dumps(m))),
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
)


@database_sync_to_async
def record_state() -> tuple:
    return (sorted(Section.objects.values_list("pk", "version", "text")), KeptText.objects.count(),
            AgreedAction.objects.count(), Attendance.objects.count())


@pytest.fixture
async def room(world, live_layer, settings):
    settings.LIVE_RATE_BURST = 1_000_000  # the rate limit has its own test
    discussion = await database_sync_to_async(
        lambda: do_start_discussion(acting_user=world.team_manager, discussion=schedule(world)))()
    rooms = Rooms()
    tab = await rooms.open(discussion.pk, world.social_worker)
    tab.baseline = await record_state()
    yield tab
    await rooms.close_all()


async def throw(tab, sent) -> list[dict]:
    for kind, payload in sent:
        if kind == "text":
            await tab.send_text(payload)
        else:
            await tab.send_bytes(payload)
    await tab.send({"type": "ping"})
    replies = []
    while True:
        reply = await tab.frame(10)
        replies.append(reply)
        if reply["type"] == "pong" and not await tab.communicator.receive_nothing(0.05):
            continue  # more to read: an earlier pong (a ping among the random frames)
        if reply["type"] == "pong":
            return replies


@FUZZ
@given(sent=st.lists(frames, min_size=1, max_size=5))
async def test_random_frames_change_nothing_and_the_discussion_room_stays_open(room, sent):
    replies = await throw(room, sent)
    for reply in replies:
        assert reply.get("type") in SERVER_FRAMES, reply
        if reply["type"] == "error":
            assert reply["code"] != "server_error", (sent, reply)
            assert isinstance(reply["message"], str) and reply["message"]
    assert await record_state() == room.baseline, sent


@pytest.mark.django_db(transaction=True)
async def test_a_flood_of_messages_is_rate_limited_with_a_clear_error_and_the_room_stays_open(
        world, live_layer, settings):
    settings.LIVE_RATE_BURST, settings.LIVE_RATE_PER_SECOND = 5, 0.001
    discussion = await database_sync_to_async(lambda: schedule(world))()
    rooms = Rooms()
    try:
        tab = await rooms.open(discussion.pk, world.social_worker, resume=False)
        for _ in range(8):
            await tab.send({"type": "ping"})
        replies = [await tab.frame() for _ in range(8)]
        limited = [r for r in replies if r["type"] == "error"]
        assert [r["type"] for r in replies[:5]] == ["error"] * 5  # not resumed yet: out of order
        assert len(limited) == 8 and {r["code"] for r in limited[5:]} == {"rate_limited"}
        assert "Too many messages" in limited[-1]["message"]
    finally:
        await rooms.close_all()
