"""The periodic catch-up (every open case room, every LIVE_RECHECK_SECONDS) reads and
renders only what the connection has not been sent: in a busy room, a connection that
missed nothing costs one query, not a re-render of every note since its last check."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from casenotes import events
from casenotes.models import CaseEvent
from casenotes.permissions import policy
from workspace import live


def _busy_room(world, notes=5):
    access = policy.access_case(world.team_manager, world.case.pk)
    before = events.last_seq(world.case.pk)
    for n in range(notes):
        world.standard_note(world.social_worker, body=f"Home visit {n}: the children were well.")
    seqs = list(CaseEvent.objects.filter(case=world.case, seq__gt=before).values_list("seq", flat=True))
    return access, before, seqs


def test_a_catch_up_after_everything_was_sent_reads_no_note_and_costs_one_query(world):
    access, before, seqs = _busy_room(world)
    with CaptureQueriesContext(connection) as queries:
        replay = events.replay(access, before, sent=seqs)
    assert replay.messages == [] and not replay.reload
    assert replay.checked_to == max(seqs)
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_a_catch_up_still_sends_what_was_not_sent_in_its_current_state(world):
    access, before, seqs = _busy_room(world)
    missed = seqs[2]
    replay = events.replay(access, before, sent=[s for s in seqs if s != missed])
    assert [m["seq"] for m in replay.messages] == [missed]
    assert "Home visit 2" in str(replay.messages[0])
    # Without `sent`, every note since the last check is read and rendered again.
    assert [m["seq"] for m in events.replay(access, before).messages] == seqs


def test_periodic_rechecks_come_at_most_every_period_and_spread_over_its_last_quarter(settings):
    settings.LIVE_RECHECK_SECONDS = 40
    waits = [live.recheck_interval() for _ in range(400)]
    assert all(30 <= wait <= 40 for wait in waits)
    assert max(waits) - min(waits) > 5  # spread, not all at one moment
