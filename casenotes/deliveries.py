"""The audit of live deliveries: each note (in full or as a placeholder) sent to a
viewer over a live connection leaves one access-log entry, written BEFORE it is sent.

Writing one entry per viewer per notice, one at a time, would cost a database round
trip per viewer. Instead the consumers of one process hand their entries to a batch:
the process's relay (casenotes/relay.py) queues the entries of every viewer of what it
hands out at once, so the batch needs no waiting window: it writes them all in one
transaction (audit.actions.record_many: one INSERT, hash-chained), and only then are
they sent. If the batch cannot be written, nothing in it is sent (fail closed); the
clients catch up later, through replay, which is audited in the same way.
"""

import asyncio
import logging

from channels.db import database_sync_to_async

from audit.actions import Pending, record_many
from workspace import live

logger = logging.getLogger(__name__)

BATCH_LIMIT = 500


class DeliveryAudit:
    def __init__(self):
        self.pending: list[tuple[Pending, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def record(self, entries: list[Pending]) -> list[bool]:
        """Queue `entries`; for each, True once it is committed, False if it could not
        be written."""
        futures = [self._queue(entry) for entry in entries]
        return [await future for future in futures]

    def _queue(self, entry: Pending) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((entry, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._flush())
        return future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # what else is queued in this turn of the event loop joins
        while self.pending:
            batch, self.pending = self.pending[:BATCH_LIMIT], self.pending[BATCH_LIMIT:]
            try:
                await database_sync_to_async(record_many)([entry for entry, _ in batch])
                written = True
            except Exception:
                logger.exception("live deliveries could not be audited; not sending them")
                written = False
            for _, future in batch:
                if not future.done():
                    future.set_result(written)


def for_this_loop() -> DeliveryAudit:
    """The process's batcher (one per event loop)."""
    return live.per_loop("delivery audit", DeliveryAudit)
