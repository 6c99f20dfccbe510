"""The history of a case record, its people and its access: who changed what, when,
field by field, for those allowed to see the case (access history: its manager); and
the history of a note, whose draft versions are its author's alone."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction
from casenotes.actions import (
    do_add_keyworker,
    do_allocate_lead,
    do_create_note,
    do_request_transfer,
    do_set_specialist_agency,
    do_update_draft,
)
from casenotes.models import CaseNote
from teams.models import Agency, Role
from tests.helpers import AuditWatch


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_case_history_shows_each_change_with_who_and_what(world):
    manager = world.team_manager
    new_lead = world.user(Role.SOCIAL_WORKER, 1)
    do_allocate_lead(acting_user=manager, case=world.case, lead=new_lead)
    do_set_specialist_agency(acting_user=world.social_worker, person=world.people["dean"],
                             agency=world.agencies[Agency.Kind.DOMESTIC_ABUSE])
    watch = AuditWatch()
    response = _client(world.user(Role.PROBATION_OFFICER)).get(
        reverse("casenotes:case_history", args=[world.case.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Lead practitioner" in page
    assert f"<del>{world.social_worker.get_full_name()}</del> → <ins>{new_lead.get_full_name()}</ins>" in page
    assert manager.get_full_name() in page
    assert "Dean Walsh" in page and "<ins>Herts Domestic Abuse Service</ins>" in page
    entry = watch.one(AuditAction.CASE_HISTORY_VIEWED)
    assert entry.case_id == world.case.pk


@pytest.mark.parametrize("role", [Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_case_history_is_not_found_for_those_who_may_not_see_the_case(world, role):
    response = _client(world.user(role)).get(reverse("casenotes:case_history",
                                                     args=[world.case.pk]))
    assert response.status_code == 404
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    assert _client(outsider).get(reverse("casenotes:case_history", args=[world.case.pk])
                                 ).status_code == 404


def test_the_access_page_shows_the_history_of_grants(world):
    keyworker = world.locality_users[Role.RECOVERY_WORKER]
    do_add_keyworker(acting_user=world.team_manager, case=world.case, user=keyworker)
    page = _client(world.team_manager).get(
        reverse("casenotes:case_access", args=[world.case.pk])).content.decode()
    assert 'id="access-history"' in page
    assert f"<ins>{keyworker.get_full_name()}</ins>" in page and "<ins>Keyworker</ins>" in page


def test_the_access_page_shows_each_change_of_lead_practitioner_and_allocated_team(world):
    new_lead = world.user(Role.SOCIAL_WORKER, 1)
    do_allocate_lead(acting_user=world.team_manager, case=world.case, lead=new_lead)
    page = _client(world.team_manager).get(
        reverse("casenotes:case_access", args=[world.case.pk])).content.decode()
    history = page.split('id="access-history"', 1)[1]
    # The newest first: the lead's change, then the allocation the case opened with.
    assert history.count("Allocation — ") == 2
    assert (f"<del>{world.social_worker.get_full_name()}</del> → "
            f"<ins>{new_lead.get_full_name()}</ins>") in history
    assert history.index(f"<ins>{new_lead.get_full_name()}</ins>") < history.index(
        f"<ins>{world.case.allocated_team.name}</ins>")


def test_dates_are_shown_as_people_say_them_and_an_end_date_as_the_end_of_that_day(world):
    import datetime

    from django.utils import dateformat, timezone

    keyworker = world.locality_users[Role.RECOVERY_WORKER]
    last_day = timezone.localdate() + datetime.timedelta(days=30)
    do_add_keyworker(acting_user=world.team_manager, case=world.case, user=keyworker,
                     until=last_day)
    said = f"the end of {dateformat.format(last_day, 'j M Y')}"
    page = _client(world.team_manager).get(
        reverse("casenotes:case_access", args=[world.case.pk])).content.decode()
    keyworkers = page.split('id="access-keyworkers"', 1)[1].split("</table>", 1)[0]
    assert "T" + said[1:] in keyworkers
    history = page.split('id="access-history"', 1)[1]
    assert f"<ins>{said}</ins>" in history and "+00:00" not in history
    ellie = world.people["ellie"]
    history = _client(world.social_worker).get(
        reverse("casenotes:case_history", args=[world.case.pk])).content.decode()
    assert f"<ins>{dateformat.format(ellie.date_of_birth, 'j M Y')}</ins>" in history
    assert ellie.date_of_birth.isoformat() not in history


def test_allocating_the_lead_who_already_leads_says_nothing_changed(world):
    manager = _client(world.team_manager)
    url = reverse("casenotes:lead_allocate", args=[world.case.pk])
    versions = world.case.history.count()
    page = manager.post(url, {"lead": world.social_worker.pk}, follow=True).content.decode()
    assert f"{world.social_worker.get_full_name()} is already the lead practitioner. " \
           "Nothing was changed." in page
    assert "Lead practitioner allocated." not in page
    assert world.case.history.count() == versions
    new_lead = world.user(Role.SOCIAL_WORKER, 1)
    page = manager.post(url, {"lead": new_lead.pk}, follow=True).content.decode()
    assert "Lead practitioner allocated." in page


def test_a_refused_access_change_is_summarised_at_the_top_of_the_page(world):
    response = _client(world.team_manager).post(
        reverse("casenotes:keyworker_add", args=[world.case.pk]), {"user": "", "until": "31/02/2027"})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.index('class="govuk-error-summary"') < html.index("<h1")
    assert html.count('class="govuk-error-summary"') == 1
    assert "<title>Error: " in html


def test_accepting_a_step_down_to_early_help_asks_for_the_legal_basis_to_be_reviewed(world):
    transfer = do_request_transfer(acting_user=world.team_manager, case=world.case,
                                   to_team=world.locality_team, reason="Risk has fallen.")
    receiving = _client(world.locality_users[Role.TEAM_MANAGER])
    page = receiving.post(reverse("casenotes:transfer_decide", args=[transfer.pk]), {
        "decision": "accept", "decision_reason": "Agreed at the step-down meeting."},
        follow=True).content.decode()
    assert (f"{world.case.reference} is now with {world.locality_team.name}. Allocate a lead "
            "practitioner. Its legal basis is still child protection plan: review it under "
            "Manage the case.") in page


def test_a_notes_history_shows_its_draft_versions_to_its_author_only(world):
    """A draft is its author's alone: for anyone else the note's history begins where it
    was finalised, so text written while it was sealed (or restricted) is not shown to
    those who may read the final, standard note."""
    author = world.user(Role.MENTAL_HEALTH_PRACTITIONER)
    sealed_draft = "Refuge address 14 Lime Grove (DRAFT-SEALED-51)."
    draft = do_create_note(acting_user=author, case=world.case, note_type="home_visit",
                           occurred_at=timezone.now() - datetime.timedelta(hours=1),
                           body=sealed_draft, sensitivity=CaseNote.Sensitivity.SEALED)
    note = do_update_draft(acting_user=author, note=draft, expected_version=draft.version,
                           note_type="home_visit", occurred_at=draft.occurred_at,
                           body="Visit went well.", sensitivity=CaseNote.Sensitivity.STANDARD,
                           finalise=True)
    url = reverse("casenotes:note_history", args=[world.case.pk, note.pk])
    for reader in [world.user(Role.PROBATION_OFFICER), world.team_manager]:
        page = _client(reader).get(url).content.decode()
        assert "Visit went well." in page
        assert "DRAFT-SEALED-51" not in page and "Sealed" not in page
        assert "Draft" not in page
    own = _client(author).get(url).content.decode()
    assert "DRAFT-SEALED-51" in own and "Visit went well." in own
