"""A live connection fails closed: if deciding access raises, the connection is
refused and closed, never left open with what it had."""

import asyncio

import pytest

from casenotes.permissions import Policy
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_error_while_rechecking_access_closes_the_socket(rooms, world, monkeypatch):
    tab = await rooms.open(world.case.pk, world.social_worker)

    def broken(self, user, cases):
        raise RuntimeError("the permission tables cannot be read")

    monkeypatch.setattr(Policy, "_case_accesses", broken)
    await tab.send({"type": "ping"})
    assert await asyncio.wait_for(tab.closed(timeout=5), timeout=6) == CLOSE_REFUSED


async def test_an_error_while_joining_refuses_the_socket(rooms, world, monkeypatch):
    def broken(self, user, cases):
        raise RuntimeError("the permission tables cannot be read")

    monkeypatch.setattr(Policy, "_case_accesses", broken)
    tab = await rooms.connect(world.case.pk, user=world.social_worker)
    assert await tab.closed() == CLOSE_REFUSED
