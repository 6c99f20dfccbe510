"""Saving a note and delivering it to everyone in the room costs the same number of
database queries with 1, 10 or 50 people watching: a notice is rendered once per
audience when it is sent, and consumers deliver it without touching the database.

Queries are counted on every connection in every thread (the consumers' database
threads use their own), from just before the save until every viewer has the event.
"""

import itertools
import threading

import pytest
from channels.db import database_sync_to_async
from django.db.backends.utils import CursorWrapper

from casenotes import events
from casenotes.models import CaseNote
from teams.models import CASE_ROLES, Role
from tests.casenotes.rooms import rooms_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
S = CaseNote.Sensitivity
VIEWERS = (1, 10, 50)


@pytest.fixture
def live_layer(settings):
    """The in-memory layer, whatever the suite runs on: this counts database queries."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                           "CONFIG": {"capacity": 1000}}}


class QueryCounter:
    """Counts statements run through any Django cursor, in any thread, while active."""

    def __init__(self, monkeypatch):
        self.lock = threading.Lock()
        self.active = False
        self.statements: list[str] = []
        counter = self
        execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

        def counted_execute(self, sql, params=None):
            counter.hit(sql)
            return execute(self, sql, params)

        def counted_executemany(self, sql, param_list):
            counter.hit(sql)
            return executemany(self, sql, param_list)

        monkeypatch.setattr(CursorWrapper, "execute", counted_execute)
        monkeypatch.setattr(CursorWrapper, "executemany", counted_executemany)

    def hit(self, sql) -> None:
        with self.lock:
            if self.active:
                self.statements.append(str(sql))

    def start(self) -> None:
        with self.lock:
            self.statements, self.active = [], True

    def stop(self) -> list[str]:
        with self.lock:
            self.active = False
            return list(self.statements)


async def test_saving_and_delivering_a_note_costs_the_same_queries_for_1_10_and_50_viewers(
    world, rooms, monkeypatch
):
    counter = QueryCounter(monkeypatch)
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    members = [u for role in sorted(CASE_ROLES) for u in world.pair(role)]
    counts: dict[str, dict[int, list[str]]] = {S.STANDARD: {}, S.AGENCY_RESTRICTED: {}}

    for viewers in VIEWERS:
        seq = await db(events.last_seq)(world.case.pk)
        tabs = [await rooms.open(world.case.pk, user, after=seq)
                for user in itertools.islice(itertools.cycle(members), viewers)]

        for sensitivity in (S.STANDARD, S.AGENCY_RESTRICTED):
            counter.start()
            note = await db(world.note)(author, sensitivity=sensitivity)
            delivered = [await tab.expect("event") for tab in tabs]
            counts[sensitivity][viewers] = counter.stop()

            assert {m["note"] for m in delivered} == {note.pk}
            if sensitivity == S.AGENCY_RESTRICTED:
                assert [m["level"] for m in delivered] == [
                    "full" if world.agency_of(tab.user) == world.agency_of(author)
                    or world.memberships[tab.user.pk].role == Role.TEAM_MANAGER
                    else "placeholder" for tab in tabs]
            # Exactly one each: the next event every viewer receives is the next note.
            barrier = await db(world.standard_note)(world.team_manager)
            assert all([(await tab.expect("event"))["note"] == barrier.pk for tab in tabs])

        for tab in tabs:
            await tab.disconnect()

    for sensitivity, by_viewers in counts.items():
        sizes = {viewers: len(statements) for viewers, statements in by_viewers.items()}
        assert len(set(sizes.values())) == 1, (
            f"{sensitivity}: queries by number of viewers {sizes}\n"
            + "\n".join(by_viewers[VIEWERS[-1]]))
        assert sizes[1] > 0
