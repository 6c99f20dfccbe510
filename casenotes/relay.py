"""One channel-layer listener per server process for every case room open in it.

A room's notices go to its audiences' groups (everyone in the room, one agency, the
managers, one person: workspace/live.py). If each open connection were a member of
those groups itself, a notice to a room of 50 would be 50 channel-layer messages: on
Redis, 50 encrypted copies pushed, then popped one at a time with four round trips
each, before the last viewer had it. Instead each server process joins a room's groups
once, with a channel of its own (the relay), and hands each notice, in memory, to the
connections of that process in that audience: one message per process per notice,
however many viewers it has. The delivery audit entries of everything handed out
together are written as one batch (casenotes/deliveries.py) before any of it is sent.

The relay only keeps the lists. Which audiences a connection is in is decided by the
connection from its own checked access (CaseRoomConsumer._groups), and it still drops
what it may not receive (casenotes/consumers.py, `deliver`). Notices are handed out
by one task per process, in the order the layer delivers them, so each connection
still gets its room's notices in order.
"""

import asyncio
import logging

from workspace import live

logger = logging.getLogger(__name__)

#: Seconds between attempts to receive again while the channel layer cannot be reached.
RETRY_SECONDS = 1.0


class RoomRelay:
    def __init__(self, layer, hand_to):
        """`hand_to(handed)`: delivers a list of (notice, connections) pairs, in order."""
        self.layer = layer
        self.hand_to = hand_to
        self.channel: str | None = None
        self.members: dict[str, set] = {}
        self.task: asyncio.Task | None = None
        self.outbox: list[tuple[dict, list]] = []
        self.sender: asyncio.Task | None = None
        self.layer_down = False

    async def join(self, group: str, connection) -> None:
        """Hand `group`'s notices to `connection` from now on. The process's channel
        joins the group at every call, not only the first: a Redis that restarted has
        forgotten it, and the connections' periodic re-checks call this again."""
        members = self.members.setdefault(group, set())
        new = connection not in members
        members.add(connection)
        if self.channel is None:
            # The default prefix: channels-redis receives every channel of a process
            # through one queue whose name it shares, and pops only that queue.
            self.channel = await self.layer.new_channel()
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run(self.channel))
        try:
            await self.layer.group_add(group, self.channel)
        except BaseException:
            if new:  # the connection does not count itself in: keep no reference to it
                self._forget(group, connection)
            raise

    async def leave(self, group: str, connection) -> None:
        """Stop handing `group`'s notices to `connection`; the last one out takes the
        process's channel out of the group, and out of the last group stops listening."""
        channel = self.channel
        if self._forget(group, connection):
            await self.layer.group_discard(group, channel)

    def _forget(self, group: str, connection) -> bool:
        """Drop `connection` from `group`'s list; True if it was the last one there."""
        members = self.members.get(group)
        if members is None or connection not in members:
            return False
        members.discard(connection)
        if members:
            return False
        del self.members[group]
        if not self.members:
            self._stop()
        return True

    def _stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task, self.channel = None, None

    async def _run(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Redis down: the connections are closed by their own channels failing,
                # and their pages catch up from the database once it is back.
                if not self.layer_down:
                    logger.warning("room relay waiting for the channel layer (%s: %s)",
                                   type(error).__name__, error)
                self.layer_down = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.layer_down = False
            self.hand_out(message)

    def hand_out(self, message: dict) -> None:
        """Queue one notice for this process's connections in its audience. Everything
        queued before the sender next runs goes out together: one audit batch for all
        of it (casenotes/deliveries.py), then each connection's frames in order."""
        connections = list(self.members.get(message.get("group"), ()))
        if not connections:
            return
        self.outbox.append((message, connections))
        if self.sender is None or self.sender.done():
            self.sender = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        while self.outbox:
            handed, self.outbox = self.outbox, []
            try:
                await self.hand_to(handed)
            except Exception:
                logger.exception("live notices could not be handed to this process's connections")


def for_this_loop(layer, hand_to) -> RoomRelay:
    """The process's relay (one per event loop and channel layer)."""
    return live.per_loop("room relay", lambda: RoomRelay(layer, hand_to), key=layer)
