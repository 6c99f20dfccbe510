"""Access that ends by time alone closes the case room sockets already open on it.

A keyworker grant, a hand-over and a break-glass window each carry an end
(`expires_at`); no action runs when it comes. The case room consumer schedules its
next access check for that moment (casenotes/consumers.py, `_seconds_to_next_check`),
so a socket open at the end is closed with the one close code a moment later, and a
note saved after the end never reaches it.

Each test sets LIVE_RECHECK_SECONDS far beyond its own length, so only the check
scheduled for the end can close the socket, and sends nothing to that socket once the
access has been seen working: no message, no pushed re-check, no change of access.
"""

import asyncio
import datetime

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from audit.models import AuditAction
from casenotes.actions import (
    do_add_keyworker,
    do_decide_transfer,
    do_open_break_glass,
    do_request_transfer,
)
from casenotes.models import (
    CaseGrant,
    CaseGroupObjectPermission,
    CaseTransfer,
    CaseUserObjectPermission,
)
from casenotes.permissions import VIEW_CASE, policy
from teams.models import Role
from tests.casenotes.rooms import (  # noqa: F401 (fixtures)
    CLOSE_REFUSED,
    live_layer_fixture,
    rooms_fixture,
)
from tests.helpers import AuditWatch
from workspace import live

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async

#: How far ahead each test sets the end of access: long enough to open the room and
#: see the access working first.
EXPIRES_IN = datetime.timedelta(seconds=4)
#: How soon after the end the socket must be closed.
GRACE = datetime.timedelta(seconds=5)
#: The periodic re-check, pushed out of reach of every test here.
RECHECK_SECONDS = 600

BEFORE_TEXT = "Ellie walked to school with her nan today (BEFORE-2291)."
AFTER_TEXT = "Strategy meeting moved to Thursday (AFTER-7764)."


@pytest.fixture(autouse=True)
def _no_periodic_recheck(settings):
    settings.LIVE_RECHECK_SECONDS = RECHECK_SECONDS


@pytest.fixture(autouse=True)
def _closed_by_a_decision_not_an_error(caplog):
    """The socket must close because the policy said no, not because a check raised
    (the consumer closes on any error too, which would pass these tests wrongly)."""
    yield
    failures = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)
                if "check failed" in r.getMessage() or "re-check failed" in r.getMessage()]
    assert failures == []


# --- helpers ----------------------------------------------------------------------------

def _ends() -> datetime.datetime:
    return timezone.now() + EXPIRES_IN


@db
def _expires_at(user, case) -> datetime.datetime | None:
    access = policy.case_access(user, case)
    assert access is not None, f"{user} should have access to {case} until it ends"
    return access.expires_at


async def _open_room(world, rooms, case, victim, colleague, author):
    """The colleague's tab and the victim's, both joined; the victim's access seen
    working (a ping answered, a note received in full) before it ends."""
    colleague_tab = await rooms.open(case.pk, colleague)
    victim_tab = await rooms.open(case.pk, victim)
    await colleague_tab.settle_presence()
    await victim_tab.ping()
    before = await db(world.standard_note)(author, case=case, body=BEFORE_TEXT)
    for tab in (victim_tab, colleague_tab):
        message = await tab.expect("event")
        assert (message["note"], message["level"]) == (before.pk, "full")
    return victim_tab, colleague_tab


async def _assert_closed_when_access_ends(world, rooms, case, victim, victim_tab, colleague,
                                          colleague_tab, author, ends):
    """From here on nothing is sent to the victim's socket: it must close by itself,
    with the one close code, after `ends` and within GRACE of it; and a note saved
    after that reaches the room but not the victim."""
    left = ends - timezone.now()
    assert left > datetime.timedelta(0), "the room took too long to open; the end has passed"
    wait = (left + GRACE).total_seconds()
    code = await asyncio.wait_for(victim_tab.closed(timeout=wait), timeout=wait)
    closed_at = timezone.now()
    assert code == CLOSE_REFUSED
    assert ends <= closed_at <= ends + GRACE, f"closed {closed_at - ends} after the end"

    watch = await db(AuditWatch)()
    after = await db(world.standard_note)(author, case=case, body=AFTER_TEXT)
    message = await colleague_tab.expect("event")
    assert (message["note"], message["level"]) == (after.pk, "full")
    await victim_tab.assert_nothing(0.5)
    delivered = [e.actor_id for e in await db(watch.new)()
                 if e.action == AuditAction.LIVE_DELIVERED and e.object_id == str(after.pk)]
    assert delivered == [colleague.pk]

    # The room no longer lists the victim, and a new socket is refused alike.
    await colleague_tab.settle_presence()
    assert victim.pk not in {p["user"] for p in colleague_tab.presence}
    again = await rooms.connect(case.pk, user=victim)
    assert await again.closed() == CLOSE_REFUSED


# --- (a) a keyworker grant ----------------------------------------------------------------

async def test_a_keyworker_socket_closes_when_the_grant_expires(world, rooms):
    case = world.other_case
    manager = world.locality_users[Role.TEAM_MANAGER]
    colleague = world.locality_users[Role.SOCIAL_WORKER]
    keyworker = world.user(Role.RECOVERY_WORKER)  # of the other team: a keyworker only
    await rooms.client_for(keyworker)
    await rooms.client_for(colleague)

    grant = await db(do_add_keyworker)(acting_user=manager, case=case, user=keyworker,
                                       until=timezone.localdate())
    ends = _ends()

    @db
    def end_the_grant_soon():
        # The action takes a date (access until the end of that day). To see the end
        # arrive within the test, the stored end of the grant and of its permission rows
        # is moved to `ends` directly: tests may write rows; the product never does.
        assert CaseGrant.objects.filter(pk=grant.pk).update(expires_at=ends) == 1
        assert CaseUserObjectPermission.objects.filter(grant=grant).update(expires_at=ends) == 2

    await end_the_grant_soon()
    assert await _expires_at(keyworker, case) == ends

    victim_tab, colleague_tab = await _open_room(world, rooms, case, keyworker, colleague,
                                                 colleague)
    await _assert_closed_when_access_ends(world, rooms, case, keyworker, victim_tab, colleague,
                                          colleague_tab, colleague, ends)


# --- (b) a hand-over ----------------------------------------------------------------------

async def test_an_old_team_members_socket_closes_when_the_hand_over_ends(world, rooms):
    case = world.case
    old_member = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    new_member = world.locality_users[Role.SOCIAL_WORKER]
    await rooms.client_for(old_member)
    await rooms.client_for(new_member)

    transfer = await db(do_request_transfer)(
        acting_user=world.team_manager, case=case, to_team=world.locality_team,
        reason="Step down: early help can meet the family's needs.", handover_days=1)
    await db(do_decide_transfer)(acting_user=world.locality_users[Role.TEAM_MANAGER],
                                 transfer=transfer, accept=True,
                                 reason="Agreed at the allocation meeting.")
    ends = _ends()

    @db
    def end_the_hand_over_soon():
        # The hand-over period is whole days. To see its end arrive within the test, the
        # stored end (the transfer's and the old team's read-only row) is moved to `ends`
        # directly: tests may write rows; the product never does.
        assert CaseTransfer.objects.filter(pk=transfer.pk).update(handover_ends_at=ends) == 1
        rows = CaseGroupObjectPermission.objects.filter(content_object=case,
                                                        group=world.fs_team.group)
        assert list(rows.values_list("permission__codename", flat=True)) == [VIEW_CASE]
        assert rows.update(expires_at=ends) == 1

    await end_the_hand_over_soon()
    assert await _expires_at(old_member, case) == ends
    assert not (await db(policy.case_access)(old_member, case)).can_contribute  # read-only

    victim_tab, colleague_tab = await _open_room(world, rooms, case, old_member, new_member,
                                                 new_member)
    await _assert_closed_when_access_ends(world, rooms, case, old_member, victim_tab, new_member,
                                          colleague_tab, new_member, ends)


# --- (c) a break-glass window -------------------------------------------------------------

async def test_a_break_glass_socket_closes_when_the_window_ends(world, rooms, settings):
    case = world.other_case
    user = world.user(Role.PROBATION_OFFICER)  # of the other team: emergency access only
    colleague = world.locality_users[Role.SOCIAL_WORKER]
    await rooms.client_for(user)
    await rooms.client_for(colleague)

    # The window is a setting (hours); made a few seconds long, the action sets the end.
    settings.BREAK_GLASS_HOURS = EXPIRES_IN.total_seconds() / 3600
    grant = await db(do_open_break_glass)(acting_user=user, case=case,
                                          reason_code=CaseGrant.Reason.OUT_OF_HOURS)
    ends = grant.expires_at
    assert ends - grant.starts_at == EXPIRES_IN
    assert await _expires_at(user, case) == ends

    victim_tab, colleague_tab = await _open_room(world, rooms, case, user, colleague, colleague)
    await _assert_closed_when_access_ends(world, rooms, case, user, victim_tab, colleague,
                                          colleague_tab, colleague, ends)


# --- an end brought nearer while the socket is open -----------------------------------------

async def test_an_end_brought_nearer_while_the_socket_is_open_closes_it_at_the_new_end(world, rooms):
    """The socket's check is planned for the end it knew (the end of today). A change
    pushed to it (`access.recheck`) that brings the end within seconds must close it
    then, not at the next periodic check (600 s away here)."""
    case = world.other_case
    manager = world.locality_users[Role.TEAM_MANAGER]
    colleague = world.locality_users[Role.SOCIAL_WORKER]
    keyworker = world.user(Role.RECOVERY_WORKER)
    await rooms.client_for(keyworker)
    await rooms.client_for(colleague)
    grant = await db(do_add_keyworker)(acting_user=manager, case=case, user=keyworker,
                                       until=timezone.localdate())
    victim_tab, colleague_tab = await _open_room(world, rooms, case, keyworker, colleague,
                                                 colleague)
    ends = _ends()

    @db
    def bring_the_end_nearer():
        # As in (a), the stored end is moved directly (the action takes whole days); the
        # change is then pushed to the keyworker's sockets as the actions push theirs.
        assert CaseGrant.objects.filter(pk=grant.pk).update(expires_at=ends) == 1
        assert CaseUserObjectPermission.objects.filter(grant=grant).update(expires_at=ends) == 2
        live.notify_access_changed(keyworker.pk)

    await bring_the_end_nearer()
    await victim_tab.ping()  # the pushed re-check has been handled; still open
    await _assert_closed_when_access_ends(world, rooms, case, keyworker, victim_tab, colleague,
                                          colleague_tab, colleague, ends)
