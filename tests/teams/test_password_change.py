"""An administrator's password change for a user is audited and ends every session of
that user (their open pages' live connections close); changing one's own keeps the
session it was done in."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401
from tests.factories import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-77"


def signed_in(user, password=PASSWORD) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


@pytest.fixture
def admin_client(world):
    return signed_in(world.bootstrap_admin)


def change(admin_client, user):
    return admin_client.post(reverse("admin:auth_user_password_change", args=[user.pk]), {
        "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})


def test_a_password_changed_by_an_administrator_ends_the_users_sessions_and_is_audited(world, admin_client):
    user = world.social_worker
    theirs = signed_in(user)
    assert theirs.get("/").status_code == 200
    response = change(admin_client, user)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert theirs.get("/").status_code == 302  # signed out
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED, object_id=str(user.pk)).exists()
    ended = AuditEvent.objects.get(action=AuditAction.SESSIONS_ENDED, object_id=str(user.pk))
    assert "password changed" in ended.reason
    assert admin_client.get(reverse("admin:index")).status_code == 200


def test_an_administrator_changing_their_own_password_stays_signed_in_here_only(world, admin_client):
    me = world.bootstrap_admin
    elsewhere = signed_in(me)
    assert change(admin_client, me).status_code == 302
    assert admin_client.get(reverse("admin:index")).status_code == 200
    assert elsewhere.get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db(transaction=True)
async def test_a_password_change_closes_the_users_open_live_connections_within_seconds(rooms, world):
    import asyncio
    import time

    from channels.db import database_sync_to_async

    from teams.actions import do_set_password

    tab = await rooms.open(world.case.pk, world.social_worker)
    started = time.monotonic()
    await database_sync_to_async(do_set_password)(acting_user=world.bootstrap_admin,
                                                  user=world.social_worker, password=NEW_PASSWORD)
    assert await asyncio.wait_for(tab.closed(timeout=5), timeout=6) == CLOSE_REFUSED
    assert time.monotonic() - started < 5
