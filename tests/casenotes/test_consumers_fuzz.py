"""Random input thrown at an open case room: random JSON, messages with a real or
invented type and random fields, drafts of the right shape with content that cannot
pass, and raw text and binary frames.

Whatever arrives, the consumer never fails (the communicator would raise the
consumer's exception), never writes (no note, event, person or addendum; no audit entry
beyond the join), never answers "something went wrong" (bad input gets its own error),
and stays open: a ping afterwards gets its pong. If it ever closed, it would have to
be with the one refusal code (and a fresh connection carries on).

One connection serves every example of a test; each example ends with a ping and a
resume whose number no example produces, so all of its answers have been read.
"""

import datetime
import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from casenotes.models import Addendum, CaseEvent, CaseNote, Person
from teams.models import Role
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

#: A resume number no example sends: its `synced` reply closes each example.
SENTINEL = 2**62 + 12345

#: Every frame type the room may send to a page.
SERVER_FRAMES = {"error", "event", "synced", "reload", "pong", "presence", "writing",
                 "draft.saved", "draft.conflict", "draft.invalid"}

TYPES = ["resume", "writing", "ping", "draft.save"]
FIELDS = ["type", "after", "active", "note", "version", "note_type", "occurred_at", "body",
          "sensitivity", "is_significant", "people", "readers"]

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
typed_messages = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(TYPES) | st.text(max_size=15),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), json_values, max_size=8),
)
#: Moments anywhere, near the ends of the calendar (where converting between zones
#: overflows), and any text at all.
moments = (
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.datetimes(max_value=datetime.datetime(1, 1, 2), timezones=st.timezones()).map(
        lambda d: d.isoformat())
    | st.datetimes(min_value=datetime.datetime(9999, 12, 30), timezones=st.timezones()).map(
        lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat())
    | st.text(max_size=40)
)
ids = st.integers(min_value=1, max_value=2**63 - 1)
#: draft.save messages of exactly the right shape whose content can never be saved (a
#: note type that does not exist): they reach the action's validation, which refuses.
doomed_drafts = st.fixed_dictionaries({
    "type": st.just("draft.save"), "note": st.none(),
    "version": st.none() | st.integers(min_value=1, max_value=2**31 - 1),
    "note_type": st.text(max_size=40).filter(lambda t: t not in CaseNote.NoteType.values),
    "occurred_at": moments, "body": st.text(max_size=200),
    "sensitivity": st.sampled_from(CaseNote.Sensitivity.values) | st.text(max_size=20),
    "is_significant": st.booleans(), "people": st.lists(ids, max_size=3),
    "readers": st.lists(ids, max_size=3),
})


def _text(value) -> str:
    return json.dumps(value)  # NaN and Infinity come out as bare words: not JSON either


text_frames = st.one_of(
    json_values.map(_text), typed_messages.map(_text), doomed_drafts.map(_text),
    st.text(max_size=200),
).map(lambda text: ("text", text))
binary_frames = st.binary(max_size=200).map(lambda data: ("bytes", data))


@database_sync_to_async
def _counts() -> dict:
    return {"notes": CaseNote.objects.count(), "events": CaseEvent.objects.count(),
            "people": Person.objects.count(), "addenda": Addendum.objects.count(),
            "audit": AuditEvent.objects.count()}


class FuzzRoom:
    """One socket kept open across examples (re-opened only if the server closed it)."""

    def __init__(self, world, rooms):
        self.world, self.rooms = world, rooms
        self.tab = None
        self.joins = 0

    async def connect(self):
        self.tab = await self.rooms.open(self.world.case.pk, self.world.social_worker)
        self.joins += 1

    async def throw(self, frames) -> list[dict]:
        """Send `frames`, then the sentinel resume; return every reply up to its answer.
        Then prove the connection alive: a ping is answered by a pong, and nothing else."""
        tab = self.tab
        for kind, payload in frames:
            if kind == "text":
                await tab.send_text(payload)
            else:
                await tab.send_bytes(payload)
        await tab.send({"type": "resume", "after": SENTINEL})
        replies = []
        while True:
            output = await tab.output(10)
            if output["type"] == "websocket.close":
                assert output.get("code") == CLOSE_REFUSED, output
                await tab.disconnect()
                await self.connect()
                return replies
            reply = _frame(output)
            replies.append(reply)
            if reply == {"type": "synced", "seq": SENTINEL}:
                break
        await tab.send({"type": "ping"})
        assert _frame(await tab.output(10)) == {"type": "pong"}
        return replies


def _frame(output: dict) -> dict:
    assert output["type"] == "websocket.send" and "text" in output, output
    return json.loads(output["text"])


@pytest.fixture
async def fuzz_room(world, rooms, settings):
    settings.LIVE_RATE_BURST = 1_000_000  # the rate limit has its own test
    room = FuzzRoom(world, rooms)
    await room.connect()
    room.baseline = await _counts()
    return room


async def _check(room: FuzzRoom, frames) -> list[dict]:
    replies = await room.throw(frames)
    for reply in replies:
        assert isinstance(reply, dict) and reply.get("type") in SERVER_FRAMES, reply
        if reply["type"] == "error":
            assert reply["code"] != "server_error", (frames, reply)
            assert isinstance(reply["message"], str) and reply["message"]
    expected = dict(room.baseline, audit=room.baseline["audit"] + room.joins - 1)
    assert await _counts() == expected, frames
    return replies


@FUZZ
@given(values=st.lists(json_values, min_size=1, max_size=4))
async def test_random_json_values_change_nothing_and_the_room_stays_open(fuzz_room, values):
    await _check(fuzz_room, [("text", _text(v)) for v in values])


@FUZZ
@given(messages=st.lists(typed_messages, min_size=1, max_size=4))
async def test_messages_with_real_or_invented_types_and_random_fields_change_nothing(
    fuzz_room, messages
):
    await _check(fuzz_room, [("text", _text(m)) for m in messages])


@FUZZ
@given(frames=st.lists(text_frames | binary_frames, min_size=1, max_size=5))
async def test_random_text_and_binary_frames_change_nothing(fuzz_room, frames):
    await _check(fuzz_room, frames)


@FUZZ
@given(draft=doomed_drafts)
async def test_well_formed_drafts_that_cannot_be_saved_are_refused_with_a_message(fuzz_room, draft):
    replies = await _check(fuzz_room, [("text", _text(draft))])
    answers = [r for r in replies if r["type"] in {"draft.invalid", "draft.saved", "error"}]
    assert len(answers) == 1 and answers[0]["type"] == "draft.invalid", (draft, replies)
    assert answers[0]["message"].startswith("Not saved yet: ")


@FUZZ
@given(frames=st.lists(text_frames | binary_frames, min_size=1, max_size=3))
async def test_random_frames_from_a_reader_of_another_agency_change_nothing(world, rooms, settings,
                                                                            frames):
    """The same from a probation officer's socket opened afresh for every example:
    before `resume`, anything but resume is refused in order."""
    settings.LIVE_RATE_BURST = 1_000_000
    room = FuzzRoom(world, rooms)
    room.tab = await rooms.connect(world.case.pk, user=world.user(Role.PROBATION_OFFICER))
    room.joins = 1
    await room.tab.presence_update()
    room.baseline = await _counts()
    try:
        await _check(room, frames)
    finally:
        await room.tab.disconnect()
