"""Live notices: channel-layer groups and sending after the database has committed.

The database is the record; a notice only tells listeners that something changed.
Full note content only ever travels to a group whose every member may read it (see
casenotes/events.py). A channel layer that is down (Redis stopped) never fails the
write that queued the notice: clients catch up by sequence number when it returns.

Groups:
- `case.<id>`: everyone with the case's room open;
- `case.<id>.agency.<agency id>`: those in the room acting for that agency;
- `case.<id>.managers`: the allocated team's managers in the room;
- `case.<id>.user.<user id>`: one person's connections to the room;
- `user.<user id>`: all of one person's connections (access re-checks);
- `discussion.<id>`: everyone with a group case discussion open (agenda, presence);
- `discussion.<id>.item.<item id>`: those in it who may see that agenda item's case
  (its record's text, actions and kept texts);
- `discussion.<id>.probe.<connection>`: one connection alone, to learn whether the layer
  still has it in its groups (a restarted Redis has forgotten them all).
"""

import asyncio
import logging
import random
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


#: The start of every case room audience's group name.
ROOM_PREFIX = "case."


def case_group(case_id: int) -> str:
    return f"{ROOM_PREFIX}{case_id}"


def agency_group(case_id: int, agency_id: int) -> str:
    return f"case.{case_id}.agency.{agency_id}"


def managers_group(case_id: int) -> str:
    return f"case.{case_id}.managers"


def viewer_group(case_id: int, user_id: int) -> str:
    return f"case.{case_id}.user.{user_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def discussion_group(discussion_id: int) -> str:
    return f"discussion.{discussion_id}"


def discussion_item_group(discussion_id: int, item_id: int) -> str:
    return f"discussion.{discussion_id}.item.{item_id}"


def discussion_probe_group(discussion_id: int, connection: str) -> str:
    return f"discussion.{discussion_id}.probe.{connection}"


_per_loop: dict[str, tuple] = {}


def per_loop(name: str, make, *, key=None):
    """One `make()` per running event loop (a server process has one; tests start
    many), built again when the loop, or `key`, is not the one it was built for."""
    loop = asyncio.get_running_loop()
    held = _per_loop.get(name)
    if held is None or held[0] is not loop or held[1] is not key:
        held = _per_loop[name] = (loop, key, make())
    return held[2]


#: The share of LIVE_RECHECK_SECONDS a connection's periodic re-check may come early.
RECHECK_SPREAD = 0.25


def recheck_interval() -> float:
    """Seconds until a live connection's next periodic re-check: LIVE_RECHECK_SECONDS at
    most, at random down to three quarters of it. Connections opened together (after a
    deploy, or Redis returning) would otherwise re-check together for as long as they
    stay open, every check of a room queued at once on its process's database thread,
    ahead of the deliveries' audit entries."""
    regular = float(settings.LIVE_RECHECK_SECONDS)
    return regular * (1 - RECHECK_SPREAD * random.random())  # noqa: S311 (timing, not secrets)


async def group_send(layer, group: str, message: dict) -> None:
    """Send `message` to `group`. A case room's notices name their audience group: the
    receiving process's relay hands them to that audience's connections
    (casenotes/relay.py)."""
    if group.startswith(ROOM_PREFIX):
        message = {**message, "group": group}
    await layer.group_send(group, message)


def send_on_commit(group: str, message: dict) -> None:
    """Queue `message` for `group`, sent only once the current transaction commits."""
    transaction.on_commit(partial(send_now, group, message), robust=True)


def send_now(group: str, message: dict) -> None:
    send_many([(group, message)])


def send_many(sends: list[tuple[str, dict]]) -> None:
    """Send several notices at once (one trip to the event loop and the layer)."""
    layer = get_channel_layer()
    if layer is None or not sends:
        return

    async def send_all():
        results = await asyncio.gather(
            *(group_send(layer, group, message) for group, message in sends), return_exceptions=True
        )
        for (group, message), result in zip(sends, results, strict=True):
            if isinstance(result, Exception):
                logger.warning("live notice %s to %s not sent: %r", message.get("type"), group, result)

    try:
        async_to_sync(send_all)()
    except Exception:
        # The write is already committed; listeners catch up from the database.
        logger.warning("live notices not sent", exc_info=True)


def notify_access_changed(user_id: int) -> None:
    """Ask every open connection of a user to re-check its access (after commit)."""
    send_on_commit(user_group(user_id), {"type": "access.recheck"})
