"""Sessions end: after idle time (warned before), after the absolute limit, when an
administrator ends them, when the account is deactivated; open live connections close
within seconds. Every ending is audited."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from casenotes.consumers import session_user
from teams.actions import do_end_sessions, do_save_user
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401
from tests.factories import PASSWORD
from workspace import sessions

CASELOAD = "/"


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.get(CASELOAD)  # the first request after signing in starts the clocks
    return client


def age(client: Client, **seconds_ago) -> None:
    """Move a session's clocks into the past."""
    session = client.session
    now = time.time()
    if "started" in seconds_ago:
        session[sessions.STARTED] = now - seconds_ago["started"]
    if "seen" in seconds_ago:
        session[sessions.SEEN] = now - seconds_ago["seen"]
    session.save()


def test_an_idle_session_is_signed_out_with_the_reason_and_audited(world, settings):
    settings.SESSION_IDLE_MINUTES = 30
    client = signed_in(world.social_worker)
    age(client, seen=31 * 60)
    response = client.get(CASELOAD, follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert "no activity for 30 minutes" in page
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action=AuditAction.LOGOUT, actor_id=world.social_worker.pk).exists()


def test_activity_keeps_a_session_alive_and_stay_signed_in_counts_as_activity(world, settings):
    client = signed_in(world.social_worker)
    age(client, seen=29 * 60)
    assert client.get(CASELOAD).status_code == 200
    assert time.time() - client.session[sessions.SEEN] < 5
    age(client, seen=29 * 60)
    response = client.post(reverse("keep_alive"), HTTP_ACCEPT="application/json")
    assert response.status_code == 204
    assert time.time() - client.session[sessions.SEEN] < 5
    # Without JavaScript the button posts the form and returns to the page it was on.
    back = client.post(reverse("keep_alive"), HTTP_REFERER="http://testserver/search/")
    assert back.status_code == 302 and back.url == "http://testserver/search/"
    elsewhere = client.post(reverse("keep_alive"), HTTP_REFERER="https://evil.example/")
    assert elsewhere.url == reverse("casenotes:caseload")


def test_a_session_ends_after_the_absolute_limit_however_active(world, settings):
    settings.SESSION_ABSOLUTE_HOURS = 12
    client = signed_in(world.social_worker)
    age(client, started=12 * 3600 + 60, seen=0)
    response = client.get(CASELOAD, follow=True)
    assert "signed in for 12 hours" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_every_page_carries_the_idle_warning_for_signed_in_users(world, settings):
    settings.SESSION_IDLE_MINUTES, settings.SESSION_WARNING_MINUTES = 30, 2
    page = signed_in(world.social_worker).get(CASELOAD).content.decode()
    assert 'id="session-warning"' in page and 'data-idle-minutes="30"' in page
    assert 'data-warning-minutes="2"' in page and "js/session_timeout.mjs" in page
    assert 'id="session-warning"' not in Client().get(reverse("login")).content.decode()


def test_a_timed_out_session_cannot_keep_a_live_connection(world, settings):
    client = signed_in(world.social_worker)
    key = client.session.session_key
    assert session_user(key, world.social_worker.pk) == world.social_worker
    age(client, seen=31 * 60)
    assert session_user(key, world.social_worker.pk) is None


def test_an_administrator_ends_all_of_a_users_sessions(world):
    user = world.social_worker
    first, second = signed_in(user), signed_in(user)
    other = signed_in(world.team_manager)
    ended = do_end_sessions(acting_user=world.bootstrap_admin, user=user)
    assert ended == 2
    for client in (first, second):
        assert client.get(CASELOAD).status_code == 302
    assert other.get(CASELOAD).status_code == 200
    entry = AuditEvent.objects.get(action=AuditAction.SESSIONS_ENDED)
    assert entry.object_id == str(user.pk) and "2 session(s)" in entry.reason


def test_deactivating_an_account_ends_its_sessions(world):
    user = world.social_worker
    client = signed_in(user)
    user.is_active = False
    do_save_user(acting_user=world.bootstrap_admin, user=user, changed_fields=["is_active"])
    assert not Session.objects.filter(session_key=client.session.session_key).exists()
    assert client.get(CASELOAD).status_code == 302


@pytest.mark.django_db(transaction=True)
async def test_ending_sessions_closes_open_live_connections_within_seconds(rooms, world):
    tab = await rooms.open(world.case.pk, world.social_worker)
    started = time.monotonic()
    await database_sync_to_async(do_end_sessions)(acting_user=world.bootstrap_admin,
                                                  user=world.social_worker)
    code = await asyncio.wait_for(tab.closed(timeout=5), timeout=6)
    assert code == CLOSE_REFUSED and time.monotonic() - started < 5
