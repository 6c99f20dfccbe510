"""Two-factor sign-in: required roles set it up at their next sign-in, then pass a code
(app or single-use backup code) after the password before any page or live socket;
others are not stopped; an administrator can reset it. All audited."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditAction, AuditEvent
from teams.actions import do_reset_two_factor
from teams.models import Role
from tests.casenotes.rooms import CLOSE_REFUSED, live_layer_fixture, rooms_fixture  # noqa: F401
from tests.factories import PASSWORD

CASELOAD = "/"


@pytest.fixture
def enforced(settings):
    settings.TWO_FACTOR_ENFORCED = True


def password_only(user) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def code_for(device: TOTPDevice, *, later: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + later
    return f"{totp.token():06d}"


def enrol(client: Client) -> list[str]:
    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.filter(confirmed=False).latest("pk")
    response = client.post(reverse("two_factor_setup"), {"code": code_for(device)})
    assert response.status_code == 200
    return [t.token for t in StaticToken.objects.filter(device__user=device.user)]


@pytest.mark.parametrize("role", [Role.TEAM_MANAGER, Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_managers_ig_officers_and_administrators_must_set_it_up_at_the_next_sign_in(
        world, enforced, role):
    manager = world.user(role)
    client = password_only(manager)
    response = client.get(CASELOAD)
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "<svg" in page and 'id="totp-key"' in page and "Your role needs a second step" in page
    wrong = client.post(reverse("two_factor_setup"), {"code": "000000"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=manager, confirmed=True).exists()
    codes = enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert TOTPDevice.objects.get(user=manager, confirmed=True)
    assert client.get(CASELOAD).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_ENROLLED, actor_id=manager.pk).exists()


def test_after_the_password_the_code_is_asked_before_any_page(world, enforced):
    manager = world.team_manager
    enrol(password_only(manager))
    device = TOTPDevice.objects.get(user=manager, confirmed=True)
    client = password_only(manager)
    response = client.get(reverse("casenotes:case_detail", args=[world.case.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_verify"))
    wrong = client.post(reverse("two_factor_verify"), {"code": "123456"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_FAILED, actor_id=manager.pk).exists()
    # django-otp slows repeated failures: straight after one, even the right code waits.
    slowed = client.post(reverse("two_factor_verify"), {"code": code_for(device, later=30)})
    assert slowed.status_code == 400 and "Too many wrong codes. Wait" in slowed.content.decode()
    for model in (TOTPDevice, StaticDevice):  # the wait passes
        model.objects.filter(user=manager).update(throttling_failure_timestamp=None)
    # The next 30-second code (the one just used at set-up is not accepted twice).
    right = client.post(reverse("two_factor_verify") + "?next=/", {"code": code_for(device, later=30)})
    assert right.status_code == 302 and right.url == "/"
    assert client.get(CASELOAD).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_VERIFIED, actor_id=manager.pk).exists()


def test_a_backup_code_works_once(world, enforced):
    manager = world.team_manager
    codes = enrol(password_only(manager))
    first = password_only(manager)
    assert first.post(reverse("two_factor_verify"), {"code": codes[0]}).status_code == 302
    assert first.get(CASELOAD).status_code == 200
    second = password_only(manager)
    assert second.post(reverse("two_factor_verify"), {"code": codes[0]}).status_code == 400
    assert second.get(CASELOAD).status_code == 302


def test_a_practitioner_without_it_is_not_stopped_but_may_set_it_up(world, enforced):
    worker = world.social_worker
    client = password_only(worker)
    assert client.get(CASELOAD).status_code == 200
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "Your role needs a second step" not in page
    enrol(client)
    later = password_only(worker)
    assert later.get(CASELOAD).status_code == 302  # now asked for a code, like everyone with one


@pytest.mark.django_db(transaction=True)
async def test_a_live_socket_is_refused_until_the_second_step(rooms, world, settings):
    settings.TWO_FACTOR_ENFORCED = True
    manager = world.team_manager
    await database_sync_to_async(lambda: enrol(password_only(manager)))()
    client = await database_sync_to_async(password_only)(manager)
    tab = await rooms.connect(world.case.pk, user=manager, client=client)
    assert await tab.closed() == CLOSE_REFUSED
    device = await database_sync_to_async(TOTPDevice.objects.get)(user=manager, confirmed=True)
    response = await database_sync_to_async(client.post)(
        reverse("two_factor_verify"), {"code": code_for(device, later=30)})
    assert response.status_code == 302
    joined = await rooms.connect(world.case.pk, user=manager, client=client)
    assert (await joined.output())["type"] == "websocket.send"


def test_an_administrator_resets_it_for_a_lost_phone(world, enforced):
    manager = world.team_manager
    client = password_only(manager)
    enrol(client)
    do_reset_two_factor(acting_user=world.bootstrap_admin, user=manager)
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert client.get(CASELOAD).status_code == 302  # signed out everywhere
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_RESET, object_id=str(manager.pk)).exists()
    fresh = password_only(manager)
    assert fresh.get(CASELOAD).url.startswith(reverse("two_factor_setup"))


@pytest.mark.parametrize("code", ["12\x0034", "x" * 5000, "１２３４５６", "😀"],
                         ids=["nul", "long", "fullwidth-digits", "emoji"])
def test_a_code_that_cannot_be_a_code_is_refused_as_a_wrong_one(world, enforced, code):
    """A NUL failed as a server error on PostgreSQL (the backup codes' lookup)."""
    manager = world.team_manager
    enrol(password_only(manager))
    client = password_only(manager)
    response = client.post(reverse("two_factor_verify"), {"code": code})
    assert response.status_code == 400 and "That code is not right" in response.content.decode()
    assert client.get(CASELOAD).status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_FAILED, actor_id=manager.pk).exists()
    # Setting it up: the same answer, and nothing confirmed.
    officer = world.user(Role.IG_OFFICER)
    setting_up = password_only(officer)
    assert setting_up.get(reverse("two_factor_setup")).status_code == 200
    response = setting_up.post(reverse("two_factor_setup"), {"code": code})
    assert response.status_code == 400 and "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=officer, confirmed=True).exists()
