"""Every live delivery of note content leaves one access-log entry, written before the
note is sent; a delivery that cannot be audited is not sent."""

import json

import pytest
from channels.db import database_sync_to_async

from audit.models import AuditAction, AuditEvent
from casenotes import deliveries
from casenotes.consumers import CaseRoomConsumer
from casenotes.models import CaseNote
from teams.models import Role
from tests.casenotes.rooms import live_layer_fixture, rooms_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
S = CaseNote.Sensitivity


@db
def _deliveries(note_id) -> list[tuple[int, str, str]]:
    return sorted(AuditEvent.objects.filter(action=AuditAction.LIVE_DELIVERED,
                                            object_id=str(note_id))
                  .values_list("actor_id", "reason", "role_label"))


async def test_each_viewer_who_receives_a_note_leaves_one_entry_at_its_level(world, rooms):
    author = world.user(Role.PROBATION_OFFICER)
    same_agency = world.user(Role.PROBATION_OFFICER, 1)
    other = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    tabs = [await rooms.open(world.case.pk, user) for user in (same_agency, other)]
    note = await db(world.note)(author, sensitivity=S.AGENCY_RESTRICTED)
    levels = [(await tab.expect("event"))["level"] for tab in tabs]
    assert levels == ["full", "placeholder"]
    entries = await _deliveries(note.pk)
    seq = (await db(lambda: note.case.events.order_by("-seq").first())()).seq
    assert sorted((actor, reason) for actor, reason, _ in entries) == sorted([
        (same_agency.pk, f"event {seq}, full"), (other.pk, f"event {seq}, placeholder")])
    assert all(role for _, _, role in entries)  # the viewer's role is recorded


async def test_a_note_a_viewer_never_receives_leaves_no_entry_for_them(world, rooms):
    author = world.social_worker
    outsider = world.user(Role.RECOVERY_WORKER)
    tab = await rooms.open(world.case.pk, outsider)
    sealed = await db(world.note)(author, sensitivity=S.SEALED)
    barrier = await db(world.standard_note)(world.team_manager)
    assert (await tab.expect("event"))["note"] == barrier.pk
    assert await _deliveries(sealed.pk) == []
    assert [a for a, _, _ in await _deliveries(barrier.pk)] == [outsider.pk]


async def test_replayed_notes_are_audited_like_live_ones(world, rooms):
    viewer = world.user(Role.DA_VICTIM_WORKER)
    first = await db(world.standard_note)(world.social_worker)
    second = await db(world.standard_note)(world.social_worker)
    tab = await rooms.open(world.case.pk, viewer, after=0)
    assert {m.get("note") for m in tab.replayed} >= {first.pk, second.pk}
    for note in (first, second):
        assert [a for a, _, _ in await _deliveries(note.pk)] == [viewer.pk]


async def test_a_delivery_that_cannot_be_audited_is_not_sent(world, rooms, monkeypatch):
    viewer = world.user(Role.FAMILY_SUPPORT_WORKER)
    tab = await rooms.open(world.case.pk, viewer)

    def audit_store_down(pending):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(deliveries, "record_many", audit_store_down)
    unsent = await db(world.standard_note)(world.social_worker)
    await tab.assert_nothing(0.5)
    monkeypatch.undo()
    # Once entries can be written again, the client catches up and it is audited then.
    replayed, _ = await tab.resume(0)
    assert unsent.pk in {m.get("note") for m in replayed}
    assert [a for a, _, _ in await _deliveries(unsent.pk)] == [viewer.pk]


async def test_one_notice_to_many_viewers_is_audited_in_one_batch(world, rooms, monkeypatch):
    batches = []
    original = deliveries.record_many

    def counted(pending):
        batches.append(len(pending))
        return original(pending)

    monkeypatch.setattr(deliveries, "record_many", counted)
    viewers = world.fs_members()[:10]
    tabs = [await rooms.open(world.case.pk, user, after=None) for user in viewers]
    for tab in tabs:
        await tab.resume(await db(lambda: world.case.events.count())())
    batches.clear()
    note = await db(world.standard_note)(world.social_worker)
    for tab in tabs:
        assert (await tab.expect("event"))["note"] == note.pk
    assert batches == [10]


def _audit_fails_once(monkeypatch) -> list:
    """The next delivery audit batch cannot be written (its entries are listed in the
    list returned); the ones after it can."""
    real = deliveries.DeliveryAudit.record
    failures = []

    async def fail_once(self, entry):
        if not failures:
            failures.append(entry)
            return False
        return await real(self, entry)

    monkeypatch.setattr(deliveries.DeliveryAudit, "record", fail_once)
    return failures


async def test_a_delivery_that_could_not_be_audited_is_sent_by_the_next_catch_up(
        rooms, world, settings, monkeypatch):
    """Fail closed, then make up for it: a note whose delivery audit failed is not sent,
    and the connection's periodic catch-up (from the database) sends it, audited, once.
    The same catch-up covers notices lost while Redis restarted."""
    import asyncio

    settings.LIVE_RECHECK_SECONDS = 1
    tab = await rooms.open(world.case.pk, world.user(Role.PROBATION_OFFICER))
    failures = _audit_fails_once(monkeypatch)
    note = await database_sync_to_async(world.standard_note)(world.social_worker)
    event = await asyncio.wait_for(tab.expect("event", timeout=5), timeout=6)
    assert failures and event["note"] == note.pk and event["level"] == "full"
    await tab.ping()
    await tab.assert_nothing(1.5)  # sent once: the next catch-up does not repeat it


async def test_the_resume_point_never_passes_a_notice_that_could_not_be_sent(
        rooms, world, settings, monkeypatch):
    """The page resumes from where the server says ("synced", then each catch-up's
    "checkpoint"), not from the newest notice it saw: a note whose delivery could not
    be audited while a later one came live is not skipped if the connection drops
    before the catch-up sends it."""
    import asyncio

    settings.LIVE_RECHECK_SECONDS = 1
    tab = await rooms.open(world.case.pk, world.user(Role.PROBATION_OFFICER), after=None)
    _, synced = await tab.resume(await db(lambda: world.case.events.count())())
    failures = _audit_fails_once(monkeypatch)
    gate, catch_up = asyncio.Event(), CaseRoomConsumer._catch_up

    async def after_the_gate(self):
        await gate.wait()
        await catch_up(self)

    monkeypatch.setattr(CaseRoomConsumer, "_catch_up", after_the_gate)
    unsent = await db(world.standard_note)(world.social_worker)
    later = await db(world.standard_note)(world.social_worker)
    first = await tab.expect("event")
    assert failures and first["note"] == later.pk  # the earlier one could not be sent
    await tab.ping()
    assert tab.checkpoints == []  # nothing moves the resume point past it
    gate.set()
    caught_up = await asyncio.wait_for(tab.expect("event", timeout=5), timeout=6)
    assert caught_up["note"] == unsent.pk
    await tab.ping()
    assert tab.checkpoints == [caught_up["seq"] + 1] and synced["seq"] < caught_up["seq"]


async def test_a_catch_up_read_before_a_newer_notice_does_not_put_the_older_state_back():
    """A catch-up reads a note from the database just before a newer notice of it comes
    live: sent after it, the older state would replace the newer on the page."""
    from collections import deque

    from casenotes.consumers import deliver

    class Connection:
        access, user_id = object(), 1

        def __init__(self):
            self.delivered, self.note_seq, self.frames = deque(maxlen=512), {}, []

        def _delivery_entry(self, event):
            return None  # no content to audit in this test's notices

        async def send_text(self, frame):
            self.frames.append(frame)

    connection = Connection()
    newer = {"type": "case.event", "seq": 9, "kind": "note.updated", "note": 4}
    older = {"type": "case.event", "seq": 7, "kind": "note.created", "note": 4}
    other = {"type": "case.event", "seq": 8, "kind": "note.created", "note": 5}
    await deliver([(connection, newer)])
    await deliver([(connection, older), (connection, other)])
    assert [json.loads(f)["seq"] for f in connection.frames] == [9, 8]
