"""The endpoint authorization matrix (tests/access_matrix.py) over the live socket: for
both users of every role in every relationship, joining the case room, autosaving a
draft through it, and what arrives of each kind of note — live, and again when a
reconnecting tab replays what it missed.

Transactional (the consumer reads through its own database threads); one test per
relationship walks every user.
"""

import datetime

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from casenotes.events import last_seq
from discussions.models import Section
from teams.models import CASE_ROLES, Role
from tests import access_matrix as am
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401
from tests.test_access_matrix import _SENSITIVITY, build_relationships, note_for_sensitivity

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
NOTE_ROWS = [n for n in am.NOTES]


def _expected(role, relationship) -> dict:
    return {(row[2], row[3]): row[4] for row in am.MATRIX
            if row[0] == role and row[1] == relationship and row[3] in am.LIVE_ACTIONS}


def _levels(frames: list[dict], notes: dict) -> dict:
    by_id = {note.pk: key for key, note in notes.items()}
    seen = {key: am.HIDDEN for key in notes}
    for frame in frames:
        if frame.get("type") == "event" and frame.get("note") in by_id:
            seen[by_id[frame["note"]]] = frame["level"]
    return seen


async def _check_discussion(rooms, discussion, user, compare) -> None:
    """Joining the discussion room of the case's team, and writing its record live."""
    tab = await rooms.connect(0, user=user, path=f"/ws/discussions/{discussion.pk}/")
    first = await tab.output()
    joined = first["type"] == "websocket.send"
    compare((am.DISCUSSION, am.LIVE_JOIN), am.ALLOW if joined else am.DENY)
    if not joined:
        assert first["type"] == "websocket.close" and first.get("code") == CLOSE_REFUSED, first
        compare((am.DISCUSSION, am.LIVE_RECORD_EDIT), am.DENY)
        await tab.disconnect()
        return
    await tab.send({"type": "resume", "after": 0})
    state = await tab.expect("state")
    await tab.expect("synced")
    section_id = await db(lambda: Section.objects.get(
        item__discussion=discussion, kind=Section.Kind.NEEDS).pk)()
    section = state["items"][str(discussion.current_item_id)]["sections"][Section.Kind.NEEDS]
    await tab.send({"type": "section.save", "section": section_id, "version": section["version"],
                    "base": section["text"], "text": section["text"] + f" A plan ({user.pk})."})
    while True:
        reply = await tab.frame()
        if reply["type"] in ("section.saved", "section.invalid", "error"):
            break
    compare((am.DISCUSSION, am.LIVE_RECORD_EDIT),
            am.ALLOW if reply["type"] == "section.saved" else am.DENY)
    await tab.disconnect()


async def _check_user(rooms, world, case, user, role, relationship, discussion) -> list[str]:
    expected = _expected(role, relationship)
    mismatches = []

    def compare(key, got):
        if key in expected and expected[key] != got:
            mismatches.append(f"{key[0]} {key[1]}: expected {expected[key]}, got {got}")

    await _check_discussion(rooms, discussion, user, compare)
    tab = await rooms.connect(case.pk, user=user)
    first = await tab.output()
    joined = first["type"] == "websocket.send"
    if not joined:
        assert first["type"] == "websocket.close" and first.get("code") == CLOSE_REFUSED, first
    compare((am.CASE, am.LIVE_JOIN), am.ALLOW if joined else am.DENY)
    if not joined:
        await tab.disconnect()
        compare((am.CASE, am.LIVE_DRAFT_SAVE), am.DENY)
        for key in expected:
            if key[1] == am.LIVE_RECEIPT:
                compare(key, am.HIDDEN)
        return mismatches

    await tab.resume(await db(last_seq)(case.pk))
    before = await db(last_seq)(case.pk)
    wanted = [n for n in NOTE_ROWS if (n, am.LIVE_RECEIPT) in expected]
    notes = {}
    for key in wanted:
        notes[key] = await db(note_for_sensitivity)(world, user, case, _SENSITIVITY[key])
    # A standard note by a case-team colleague last: everyone in the room gets it, so
    # once it has come, everything before it has too.
    sentinel = await db(note_for_sensitivity)(world, user, case, _SENSITIVITY[am.STANDARD])
    frames = []
    while True:
        frame = await tab.frame()
        frames.append(frame)
        if frame.get("type") == "event" and frame.get("note") == sentinel.pk:
            break
    for key, level in _levels(frames, notes).items():
        compare((key, am.LIVE_RECEIPT), level)

    # A tab that reconnects and replays from before gets the same, each note once.
    replay_tab = await rooms.connect(case.pk, user=user)
    await replay_tab.presence_update()
    replayed, _ = await replay_tab.resume(before)
    for key, level in _levels(replayed, notes).items():
        if (key, am.LIVE_RECEIPT) in expected and expected[(key, am.LIVE_RECEIPT)] != level:
            mismatches.append(f"{key} replay: expected {expected[(key, am.LIVE_RECEIPT)]}, got {level}")
    await replay_tab.disconnect()

    moment = timezone.localtime() - datetime.timedelta(minutes=5)
    await tab.send({"type": "draft.save", "note": None, "version": None,
                    "note_type": "home_visit", "occurred_at": moment.isoformat(),
                    "body": "Autosaved from the room.", "sensitivity": "standard",
                    "is_significant": False, "people": [], "readers": []})
    while True:
        reply = await tab.frame()
        if reply["type"] in ("draft.saved", "draft.invalid", "error"):
            break
    compare((am.CASE, am.LIVE_DRAFT_SAVE), am.ALLOW if reply["type"] == "draft.saved" else am.DENY)
    await tab.disconnect()
    return mismatches


@pytest.mark.parametrize("relationship", am.RELATIONSHIPS)
async def test_every_live_row_of_the_matrix_holds_for_each_user(rooms, world, relationship):
    cases = await db(build_relationships)(world)
    case = cases[relationship]
    roles = ((Role.IG_OFFICER, Role.ADMINISTRATOR) if relationship == am.ORG_WIDE
             else sorted(CASE_ROLES))
    mismatches = []
    checked = 0
    for role in roles:
        for index in (0, 1):
            user = world.user(role, index)
            found = await _check_user(rooms, world, case, user, role, relationship,
                                      cases["discussions"][case.pk])
            mismatches += [f"{role.value} user{index + 1}: {m}" for m in found]
            checked += 1
    assert checked == len(roles) * 2
    assert not mismatches, "\n".join(mismatches)
