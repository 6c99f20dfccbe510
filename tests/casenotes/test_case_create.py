"""A team manager opens a new case for their team, with its lead practitioner."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, Outcome
from casenotes.models import Case
from teams.models import Role
from tests.helpers import AuditWatch


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client, team, **fields):
    data = {"reference": "FS-26-0142", "family_name": "Mensah",
            "category": Case.Category.CHILD_IN_NEED, **fields}
    return client.post(reverse("casenotes:case_create", args=[team.pk]), data)


def test_a_manager_opens_a_case_allocated_to_their_team_with_a_lead_then_adds_the_family(world):
    watch = AuditWatch()
    response = _post(_client(world.team_manager), world.fs_team,
                     lead_practitioner=world.social_worker.pk)
    case = Case.objects.get(reference="FS-26-0142")
    # Straight on to adding the family: a new case has nobody in it yet.
    assert response.status_code == 302 and response.url == reverse(
        "casenotes:person_add", args=[case.pk])
    assert (case.allocated_team, case.lead_practitioner) == (world.fs_team, world.social_worker)
    assert AuditAction.CASE_CREATED in watch.actions()
    assert case.history.get().history_user == world.team_manager


@pytest.mark.parametrize("fields, message", [
    ({"reference": ""}, "Enter the case reference."),
    ({"reference": "fs 26"}, "Enter the case reference in capitals"),
    ({"family_name": ""}, "Enter the family name."),
    ({"category": "unknown"}, "Choose the category."),
])
def test_bad_input_is_refused_with_a_message_and_nothing_saved(world, fields, message):
    response = _post(_client(world.team_manager), world.fs_team, **fields)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Case.objects.filter(family_name="Mensah").exists()


def test_a_lead_from_another_team_is_refused(world):
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    response = _post(_client(world.team_manager), world.fs_team, lead_practitioner=outsider.pk)
    assert response.status_code == 400
    assert not Case.objects.filter(family_name="Mensah").exists()


def test_a_reference_in_use_is_refused_and_the_refusal_recorded_against_that_case(world):
    watch = AuditWatch()
    cases_before = Case.objects.count()
    response = _post(_client(world.team_manager), world.fs_team, reference=world.case.reference)
    assert response.status_code == 400
    assert (f"{world.case.reference} is already the reference of a case"
            in response.content.decode())
    assert Case.objects.count() == cases_before
    # The refusal tells the manager the case exists, so the IG officer sees it in
    # that case's access log.
    denied = [e for e in watch.new() if e.action == AuditAction.ACCESS_DENIED]
    assert [(e.actor_id, e.case_id, e.outcome, e.reason) for e in denied] == [
        (world.team_manager.pk, world.case.pk, Outcome.DENIED, "create_case: reference in use")]
    assert AuditAction.CASE_CREATED not in watch.actions()


def test_a_reference_taken_at_the_same_moment_is_refused_with_the_same_message(world, monkeypatch):
    """Two managers open cases with one reference at once: both find it free, and the
    second's insert meets the first's. The second is told, as if it had been taken
    before (not a server error), and nothing of it is written."""
    from casenotes.actions import notes

    looked = []
    real = notes._case_with_reference

    def free_the_first_time(reference):
        looked.append(reference)
        return None if len(looked) == 1 else real(reference)

    monkeypatch.setattr(notes, "_case_with_reference", free_the_first_time)
    cases_before = Case.objects.count()
    response = _post(_client(world.team_manager), world.fs_team, reference=world.case.reference)
    assert response.status_code == 400
    assert (f"{world.case.reference} is already the reference of a case"
            in response.content.decode())
    assert Case.objects.count() == cases_before and len(looked) == 2


def test_a_new_reference_records_no_refusal(world):
    watch = AuditWatch()
    _post(_client(world.team_manager), world.fs_team)
    assert AuditAction.ACCESS_DENIED not in watch.actions()


@pytest.mark.parametrize("role", [Role.SOCIAL_WORKER, Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_only_the_teams_manager_may_open_a_case(world, role):
    client = _client(world.user(role))
    assert client.get(reverse("casenotes:case_create", args=[world.fs_team.pk])).status_code == 404
    assert _post(client, world.fs_team).status_code == 404
    assert not Case.objects.filter(family_name="Mensah").exists()
    other_manager = _client(world.locality_users[Role.TEAM_MANAGER])
    assert _post(other_manager, world.fs_team).status_code == 404
