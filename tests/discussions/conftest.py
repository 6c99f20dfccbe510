"""A scheduled discussion of the FS team's case (and the locality team's case, which
only the FS manager's keyworker role lets onto the agenda)."""

import datetime

import pytest
from django.utils import timezone

from discussions.actions import do_schedule_discussion


def schedule(world, *, cases=None, invitees=None, manager=None, when=None):
    manager = manager or world.team_manager
    return do_schedule_discussion(
        acting_user=manager, team=world.fs_team,
        scheduled_for=when or timezone.now() + datetime.timedelta(hours=1),
        cases=cases or [world.case], invitees=invitees if invitees is not None else world.fs_members(),
    )


@pytest.fixture
def discussion(world):
    return schedule(world)
