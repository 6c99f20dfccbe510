"""A password change is audited and ends the user's sessions (their open pages' live
connections close): an administrator's change for a user ends all of them; a change of
one's own, by an administrator in the admin or by anyone on the "Change password" page,
keeps the session it was done in."""

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


# --- changing one's own password --------------------------------------------------------

def change_own(client, current=PASSWORD, new=NEW_PASSWORD, again=None):
    return client.post(reverse("password_change"), {
        "current_password": current, "new_password": new,
        "new_password_again": new if again is None else again})


def test_changing_ones_own_password_keeps_this_session_ends_the_others_and_is_audited(world):
    user = world.social_worker
    here, elsewhere = signed_in(user), signed_in(user)
    page = here.get(reverse("password_change"))
    assert page.status_code == 200 and "Change your password" in page.content.decode()

    response = change_own(here)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert here.get("/").status_code == 200  # still signed in here
    assert elsewhere.get("/").status_code == 302  # signed out there
    changed = AuditEvent.objects.get(action=AuditAction.PASSWORD_CHANGED, object_id=str(user.pk))
    assert changed.actor_id == user.pk
    ended = AuditEvent.objects.get(action=AuditAction.SESSIONS_ENDED, object_id=str(user.pk))
    assert ended.reason.startswith("1 session(s)")
    assert user.history.first().history_user_id == user.pk
    assert NEW_PASSWORD not in changed.reason and NEW_PASSWORD not in ended.reason


@pytest.mark.parametrize(("current", "new", "again", "field", "message"), [
    ("not-my-password-1", NEW_PASSWORD, None, "current_password", "Your current password is not right"),
    ("", NEW_PASSWORD, None, "current_password", "Enter your current password"),
    (PASSWORD, "", "", "new_password", "Enter a new password"),
    (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "new_password_again", "The two new passwords are different"),
    (PASSWORD, "short-1", None, "new_password", "at least 12 characters"),
    (PASSWORD, "123456789012345", None, "new_password", "entirely numeric"),
    (PASSWORD, PASSWORD, None, "new_password", "not the one you have now"),
], ids=["wrong current", "no current", "no new", "different twice", "too short", "all numbers", "same"])
def test_a_refused_password_change_says_why_and_changes_nothing(world, current, new, again, field, message):
    user = world.social_worker
    here, elsewhere = signed_in(user), signed_in(user)
    before = AuditEvent.objects.count()

    response = change_own(here, current=current, new=new, again=again)
    assert response.status_code == 400
    page = response.content.decode()
    assert "There is a problem" in page and message in page
    assert f'id="id_{field}-error"' in page
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    written = list(AuditEvent.objects.order_by("id")[before:].values_list("action", "actor_label"))
    # A wrong current password is a failed sign-in (see the lock-out test below);
    # anything else the form refuses writes nothing.
    assert written == ([(AuditAction.LOGIN_FAILED, user.username)] if current == "not-my-password-1"
                       else [])
    assert elsewhere.get("/").status_code == 200  # nobody signed out


def test_guessing_the_current_password_locks_the_account_like_failed_sign_ins(world, settings):
    """A session left open must not let someone guess the password and take the
    account over: wrong current passwords count as failed sign-ins (django-axes)."""
    user = world.social_worker
    here = signed_in(user)  # the test client's login() has no request for django-axes
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for attempt in range(3):
        change_own(here, current=f"a-guess-{attempt}-xyz")
    response = change_own(here)  # now even the right password is refused
    assert response.status_code == 429
    assert "locked" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    actions = list(AuditEvent.objects.filter(actor_label=user.username)
                   .values_list("action", flat=True))
    assert actions.count(AuditAction.LOGIN_FAILED) >= 3
    assert AuditAction.LOGIN_LOCKED_OUT in actions
    assert not AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED).exists()


def test_changing_ones_own_password_needs_a_sign_in(world):
    response = Client().post(reverse("password_change"), {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD})
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_header_links_to_the_password_change_page(world):
    page = signed_in(world.social_worker).get("/").content.decode()
    assert f'href="{reverse("password_change")}"' in page


@pytest.mark.django_db(transaction=True)
async def test_changing_ones_own_password_closes_ones_pages_open_elsewhere_within_seconds(rooms, world):
    import asyncio
    import time

    from asgiref.sync import sync_to_async

    tab = await rooms.open(world.case.pk, world.social_worker)
    here = await sync_to_async(signed_in)(world.social_worker)
    started = time.monotonic()
    response = await sync_to_async(change_own)(here)
    assert response.status_code == 302
    assert await asyncio.wait_for(tab.closed(timeout=5), timeout=6) == CLOSE_REFUSED
    assert time.monotonic() - started < 5

