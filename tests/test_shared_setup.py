"""The suite's shared set-ups (tests/conftest.py, `Shared`): a module's tests that ask
for `world` (or the `demo`) and roll back share one, built once; each still gets its own
Python objects and starts from the same record, and any other test finds nothing of it.

The conftest runs them in this order (the world's sharers first, the demo's next, then
the rest, then a test that commits for real); each also holds when run alone.
"""

import pytest
from django.db import connection

from casenotes.actions import do_close_case
from casenotes.models import Case
from teams.models import Agency
from tests.conftest import _shared


def _is_a_copy_of_the_shared_world(world) -> bool:
    shared = _shared.get("world")
    return (shared is not None and world is not shared and world.case is not shared.case
            and world.case.pk == shared.case.pk
            and world.social_worker is not shared.social_worker
            and world.social_worker.pk == shared.social_worker.pk)


def test_a_tests_world_is_its_own_copy_and_its_writes_are_rolled_back(world):
    assert _is_a_copy_of_the_shared_world(world)
    world.case.family_name = "Changed in memory only"
    do_close_case(acting_user=world.team_manager, case=Case.objects.get(pk=world.case.pk))
    assert not Case.objects.get(pk=world.case.pk).is_open


def test_the_next_test_gets_the_same_world_afresh(world):
    assert _is_a_copy_of_the_shared_world(world)
    assert world.case.family_name == "Harper"  # not the test before's Python object
    assert _shared.get("world").case.family_name == "Harper"
    assert Case.objects.get(pk=world.case.pk).is_open  # the test before's write undone


def test_a_demo_test_finds_the_demo_and_no_world(demo):
    assert demo.case().family_name
    assert not Case.objects.filter(reference="FS-2025-0417").exists()  # the world's case


def test_a_test_asking_for_neither_finds_an_empty_record(db):
    assert not Agency.objects.exists()
    assert not Case.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_test_that_commits_builds_a_world_of_its_own_outside_any_transaction(world):
    assert not connection.in_atomic_block
    assert Agency.objects.count() == 5
    assert Case.objects.count() == 2
