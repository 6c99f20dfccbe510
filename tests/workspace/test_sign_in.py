"""Sign-in throttling (django-axes): repeated failures lock the account with a clear
message, audited; the right password does not get through while it is locked; an
administrator can unlock it."""

import datetime

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from tests.factories import PASSWORD


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = datetime.timedelta(minutes=15)
    return settings


def sign_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_repeated_failures_lock_the_account_with_a_clear_message_and_an_audit_entry(world, throttled):
    user = world.social_worker
    client = Client()
    for _ in range(2):
        response = sign_in(client, user.username, "not-the-password")
        assert response.status_code == 200 and "Enter a correct username and password" in \
            response.content.decode()
    locked = sign_in(client, user.username, "not-the-password")
    page = locked.content.decode()
    assert locked.status_code == 429
    assert "This account is locked after 3 failed sign-in attempts" in page
    assert "Try again in 15 minutes" in page
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT, actor_label=user.username).exists()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, actor_label=user.username).count() >= 3
    # While locked, even the right password is refused, from anywhere.
    again = sign_in(Client(REMOTE_ADDR="10.9.8.7"), user.username, PASSWORD)
    assert again.status_code == 429 and "_auth_user_id" not in again.client.session
    # Other accounts are not affected.
    assert sign_in(Client(), world.team_manager.username, PASSWORD).status_code == 302


def test_an_administrator_unlocks_an_account(world, throttled):
    user = world.social_worker
    for _ in range(3):
        sign_in(Client(), user.username, "wrong")
    assert sign_in(Client(), user.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", user.username)
    assert sign_in(Client(), user.username, PASSWORD).status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(world, throttled):
    user = world.social_worker
    for _ in range(2):
        sign_in(Client(), user.username, "wrong")
    assert sign_in(Client(), user.username, PASSWORD).status_code == 302
    for _ in range(2):
        sign_in(Client(), user.username, "wrong")
    assert sign_in(Client(), user.username, PASSWORD).status_code == 302
