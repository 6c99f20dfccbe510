"""What the discussion room costs does not grow with its agenda: each participant's
access to every agenda item's case is decided in one batch (policy.case_accesses), so
the check a connection makes at join and every LIVE_RECHECK_SECONDS, and the room page,
run the same queries for one case as for several."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casenotes.actions import do_create_case
from casenotes.models import Case
from discussions import selectors
from discussions.consumers import room_access
from teams.models import Role
from tests.discussions.conftest import schedule

pytestmark = pytest.mark.django_db


def _queries(fn, *args, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn(*args, **kwargs)
    return len(captured)


def _agendas(world):
    more = [do_create_case(acting_user=world.team_manager, reference=f"FS-2025-30{n}",
                           family_name=f"Family {n}", category=Case.Category.CHILD_IN_NEED,
                           team=world.fs_team)
            for n in range(4)]
    return schedule(world), schedule(world, cases=[world.case, *more])


def test_a_connections_access_check_costs_the_same_for_one_agenda_case_as_for_five(world):
    one, five = _agendas(world)
    for user in (world.social_worker, world.user(Role.PROBATION_OFFICER), world.team_manager):
        small = _queries(room_access, user, one.pk, joining=False)
        large = _queries(room_access, user, five.pk, joining=False)
        assert small == large, (user, small, large)
        assert len(room_access(user, five.pk, joining=False).visible) == 5


def test_the_room_page_costs_the_same_for_one_agenda_case_as_for_five(world):
    one, five = _agendas(world)
    user = world.social_worker
    small = _queries(selectors.room, user, one)
    large = _queries(selectors.room, user, five)
    assert small == large
    assert sum(view.visible for view in selectors.room(user, five)["items"]) == 5
