"""A discussion-room connection that outlives a Redis restart: Redis has forgotten every
group, so what the room was sent meanwhile never reached it. Its next periodic check
notices (a probe to the connection's own group does not come back), joins its groups
again and sends the record as it stands, audited as a resume is."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from audit.models import AuditAction
from discussions.actions import do_save_section
from discussions.models import Section
from tests.casenotes.rooms import forget_groups, live_layer_fixture  # noqa: F401
from tests.discussions.test_consumers import audit_since, item_of, rooms, running, section_of  # noqa: F401
from tests.helpers import AuditWatch

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
MISSED = "Rent arrears since the summer (saved while the layer had forgotten the room)."


async def _frames(tab, seconds: float) -> list[dict]:
    """Every frame but presence updates for `seconds` (waiting without a timeout that
    would end the connection)."""
    frames, deadline = [], asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if not await tab.communicator.receive_nothing(timeout=min(left, 0.1), interval=0.01):
            frames.append(await tab.frame())
    return frames


async def test_a_connection_whose_groups_were_forgotten_gets_the_record_at_its_next_check(
    world, rooms, settings  # noqa: F811
):
    settings.LIVE_RECHECK_SECONDS = 0.5
    discussion = await running(world)
    item = await item_of(discussion, world.case)
    worries = await section_of(discussion, world.case, Section.Kind.WORRIES)
    tab = await rooms.open(discussion.pk, world.social_worker)

    await forget_groups(get_channel_layer())
    watch = await db(AuditWatch)()
    await db(do_save_section)(acting_user=world.team_manager, section=worries, text=MISSED,
                              version=1)

    frames = await _frames(tab, 3)
    states = [f for f in frames if f["type"] == "state"]
    assert [f["type"] for f in frames if f["type"] == "section"] == []  # the notice was lost
    assert len(states) == 1, frames
    assert states[0]["items"][str(item.pk)]["sections"]["worries"] == {"text": MISSED,
                                                                      "version": 2}
    viewed = [e for e in await audit_since(watch) if e.action == AuditAction.DISCUSSION_CASE_VIEWED]
    assert [(e.actor_id, e.case_id, e.reason) for e in viewed] == [
        (world.social_worker.pk, world.case.pk, "live")]

    # Back in its groups: the next save arrives as a notice again.
    await db(do_save_section)(acting_user=world.team_manager, section=worries,
                              text=MISSED + " Paid off.", version=2)
    assert (await tab.expect("section"))["version"] == 3


async def test_a_connection_the_layer_still_hears_is_sent_nothing_at_its_checks(
    world, rooms, settings  # noqa: F811
):
    settings.LIVE_RECHECK_SECONDS = 0.3
    discussion = await running(world)
    tab = await rooms.open(discussion.pk, world.social_worker)
    watch = await db(AuditWatch)()

    assert await _frames(tab, 1.5) == []  # several checks, no state
    assert [e for e in await audit_since(watch)
            if e.action == AuditAction.DISCUSSION_CASE_VIEWED] == []
