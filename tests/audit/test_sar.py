"""Subject access requests: everything held about one person and who accessed it, with
other people's names marked for redaction review, and nothing about other cases."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from casenotes.actions import do_add_addendum
from teams.models import Role
from tests.helpers import AuditWatch


@pytest.fixture
def ig_client(world):
    client = Client()
    client.force_login(world.user(Role.IG_OFFICER))
    return client


@pytest.fixture
def held(world):
    """Notes about Dean (one naming Kayleigh, with an addendum), one not about him, and a
    note in another family's case that happens to use his name."""
    dean, kayleigh = world.people["dean"], world.people["kayleigh"]
    about_dean = world.standard_note(
        world.social_worker, people=[dean],
        body="Dean Walsh attended the programme; Kayleigh says he was calmer at home.")
    do_add_addendum(acting_user=world.social_worker, note=about_dean,
                    body="Correction: the session was on Thursday.")
    sealed = world.sealed_note(world.social_worker, people=[dean],
                               body="Dean's new address is withheld from Kayleigh.")
    not_about_dean = world.standard_note(world.social_worker, people=[kayleigh],
                                         body="Kayleigh attended her GP appointment.")
    other_case = world.standard_note(
        world.locality_users[Role.FAMILY_SUPPORT_WORKER], case=world.other_case,
        people=[world.other_people["abena"]], body="Abena mentioned a Dean Walsh at the school gate.")
    # Someone opens the note about Dean: that read must be in the request.
    reader = Client()
    reader.force_login(world.social_worker)
    assert reader.get(reverse("casenotes:note_detail", args=[world.case.pk, about_dean.pk])
                      ).status_code == 200
    return {"dean": dean, "about": about_dean, "sealed": sealed, "not_about": not_about_dean,
            "other_case": other_case}


def _produce(client, person, fmt="html", reference="SAR-2026-0142"):
    return client.post(reverse("audit:subject_access"),
                       {"person": person.pk, "reference": reference, "format": fmt})


def test_sar_contains_the_notes_about_the_person_with_addenda_and_who_read_them(
        world, ig_client, held):
    watch = AuditWatch()
    response = _produce(ig_client, held["dean"])
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="sar-note-{held["about"].pk}"' in page
    assert "attended the programme" in page
    assert "the session was on Thursday" in page
    assert f'id="sar-note-{held["sealed"].pk}"' in page and "Review: sealed" in page
    assert world.social_worker.get_username() in page  # who read it
    entry = watch.one(AuditAction.SAR_PRODUCED)
    assert (entry.object_type, entry.object_id, entry.case_id, entry.reason) == (
        "person", str(held["dean"].pk), world.case.pk, "SAR SAR-2026-0142")


def test_sar_marks_other_peoples_names_for_redaction_review(world, ig_client, held):
    page = _produce(ig_client, held["dean"]).content.decode()
    assert '<mark class="app-redact">Kayleigh</mark> says he was calmer' in page
    assert '<mark class="app-redact">Dean' not in page  # the subject is not a third party


def test_sar_has_nothing_about_other_notes_or_other_cases(world, ig_client, held):
    page = _produce(ig_client, held["dean"]).content.decode()
    assert "GP appointment" not in page
    assert "school gate" not in page and "Abena" not in page
    assert world.other_case.reference not in page


def test_sar_downloads_as_json_with_the_same_content(world, ig_client, held):
    response = _produce(ig_client, held["dean"], fmt="json")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["person"]["name"] == "Dean Walsh"
    ids = [n["id"] for n in data["notes"]]
    assert held["about"].pk in ids and held["not_about"].pk not in ids
    note = next(n for n in data["notes"] if n["id"] == held["about"].pk)
    assert "Kayleigh" in note["third_party_names"]
    assert note["addenda"][0]["body"] == "Correction: the session was on Thursday."
    assert not any("_html" in key for n in data["notes"] for key in n)
    assert "school gate" not in response.content.decode()


def test_finding_the_person_shows_name_birth_date_and_reference_only(world, ig_client, held):
    watch = AuditWatch()
    page = ig_client.get(reverse("audit:subject_access"), {"q": "Walsh"}).content.decode()
    assert "Dean Walsh" in page and world.case.reference in page
    assert "attended the programme" not in page
    assert AuditAction.SAR_PRODUCED not in watch.actions()


def test_finding_the_person_is_audited_with_the_people_shown(world, ig_client, held):
    watch = AuditWatch()
    ig_client.get(reverse("audit:subject_access"), {"q": "Walsh"})
    entry = watch.one(AuditAction.SEARCHED)
    assert entry.actor_id == world.user(Role.IG_OFFICER).pk
    assert entry.object_type == "sar_search"
    assert str(held["dean"].pk) in entry.reason
    assert watch.actions() == [AuditAction.SEARCHED]


def test_a_search_too_short_to_run_shows_nobody_and_records_nothing(world, ig_client, held):
    watch = AuditWatch()
    page = ig_client.get(reverse("audit:subject_access"), {"q": "Wa"}).content.decode()
    assert "Dean Walsh" not in page
    assert watch.new() == []


@pytest.mark.parametrize("name, message", [
    ("Wal\x00sh", "Enter the name without control characters."),
    ("Walsh" * 21, "Enter the name in 100 characters or fewer."),
])
def test_a_name_that_cannot_be_searched_for_gets_a_message_and_records_nothing(
        world, ig_client, held, name, message):
    watch = AuditWatch()
    response = ig_client.get(reverse("audit:subject_access"), {"q": name})
    page = response.content.decode()
    assert response.status_code == 400
    assert 'govuk-error-summary' in page and message in page and 'href="#sar-q"' in page
    assert "Dean Walsh" not in page
    assert watch.new() == []


@pytest.mark.parametrize("reference", ["", "x", "has spaces", "=cmd|' /C calc'!A0", "a" * 41])
def test_a_bad_reference_is_refused_and_produces_nothing(world, ig_client, held, reference):
    before = AuditEvent.objects.filter(action=AuditAction.SAR_PRODUCED).count()
    response = _produce(ig_client, held["dean"], reference=reference)
    assert response.status_code == 400
    assert "reference" in response.content.decode()
    assert "attended the programme" not in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.SAR_PRODUCED).count() == before


def test_only_ig_officers_may_produce_a_sar(world, held):
    for role in Role:
        if role == Role.IG_OFFICER:
            continue
        client = Client()
        client.force_login(world.user(role))
        response = _produce(client, held["dean"])
        assert response.status_code == 404, role
        assert "attended the programme" not in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.SAR_PRODUCED).exists()


def test_the_report_for_one_person_covers_their_record_not_the_rest_of_the_family(
        world, ig_client, held):
    reader = Client()
    reader.force_login(world.user(Role.DA_VICTIM_WORKER))
    assert reader.get(reverse("casenotes:note_detail", args=[world.case.pk, held["not_about"].pk])
                      ).status_code == 200
    url = reverse("audit:case_report", args=[world.case.pk])
    page = ig_client.get(url, {"person": held["dean"].pk}).content.decode()
    assert f"note {held['about'].pk}" in page
    assert f"note {held['not_about'].pk}" not in page
    whole = ig_client.get(url).content.decode()
    assert f"note {held['not_about'].pk}" in whole


def test_sar_includes_notes_that_name_the_person_without_being_about_them_marked_for_review(
        world, ig_client, held):
    ellie = world.people["ellie"]
    names_him = world.standard_note(world.social_worker, people=[ellie],
                                    body="Ellie said she feels safe when Dean is out.")
    in_addendum = world.standard_note(world.social_worker, people=[ellie], body="School visit.")
    do_add_addendum(acting_user=world.social_worker, note=in_addendum,
                    body="Later: Dean Walsh collected her.")
    surname_only = world.standard_note(world.social_worker, people=[ellie],
                                       body="Mrs Walsh from the school rang.")
    # A first name that is also a word matches only as written, capitalised.
    lower_case = world.standard_note(world.social_worker, people=[ellie],
                                     body="The dean of the college wrote to the school.")
    draft = world.draft(world.social_worker, people=[ellie], body="Dean came to the door.")
    sealed = world.sealed_note(world.user(Role.DA_VICTIM_WORKER), people=[ellie],
                               body="Dean must not learn Ellie's new school (marker S-91).")
    page = _produce(ig_client, held["dean"]).content.decode()
    for note in (names_him, in_addendum):
        section = page.split(f'id="sar-note-{note.pk}"', 1)[1].split("</h3>", 1)[0]
        assert "Names them: not marked as about them" in section
    about = page.split(f'id="sar-note-{held["about"].pk}"', 1)[1].split("</h3>", 1)[0]
    assert "Names them" not in about  # recorded as about him
    assert f'id="sar-note-{surname_only.pk}"' not in page  # a family shares a surname
    assert f'id="sar-note-{lower_case.pk}"' not in page
    assert f'id="sar-note-{draft.pk}"' not in page  # a draft is not part of the record
    # A sealed note naming him is listed, without its text.
    assert f'id="sar-withheld-{sealed.pk}"' in page and "S-91" not in page
    data = json.loads(_produce(ig_client, held["dean"], fmt="json").content)
    flagged = {n["id"]: n["named_only"] for n in data["notes"]}
    assert flagged[names_him.pk] and flagged[in_addendum.pk] and not flagged[held["about"].pk]
    assert "S-91" not in json.dumps(data)


def test_sar_includes_the_family_plan_with_every_version_names_marked_and_who_read_it(
        world, ig_client, held):
    from casenotes.actions import do_update_plan

    first = do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                           sections={"worries": "Kayleigh is frightened of Dean.",
                                     "strengths": "Kayleigh's sister lives next door."},
                           review_on=None)
    do_update_plan(acting_user=world.team_manager, case=world.case, based_on=first.version,
                   sections={"worries": "Kayleigh is frightened of Dean.",
                             "next_steps": "Dean to attend the programme weekly."},
                   review_on=None)
    reader = Client()
    reader.force_login(world.user(Role.PROBATION_OFFICER))
    assert reader.get(reverse("casenotes:plan_detail", args=[world.case.pk])).status_code == 200
    page = _produce(ig_client, held["dean"]).content.decode()
    plan = page[page.index('id="sar-plan"'):page.index("Notes about Dean Walsh")]
    assert '<mark class="app-redact">Kayleigh</mark> is frightened of Dean.' in plan
    assert "Dean to attend the programme weekly." in plan and "2 versions" in plan
    # Text a later version removed is still held, so it is in the request, marked.
    first_version = plan[plan.index('id="sar-plan-version-1"'):plan.index('id="sar-plan-version-2"')]
    assert '<mark class="app-redact">Kayleigh</mark>&#x27;s sister lives next door.' in first_version
    assert world.user(Role.PROBATION_OFFICER).get_username() in page  # the plan's reader
    assert "Family plan viewed" in page
    data = json.loads(_produce(ig_client, held["dean"], fmt="json").content)
    assert [v["parts"][2]["text"] for v in data["plan"]["versions"]] == [
        "", "Dean to attend the programme weekly."]
    assert data["plan"]["versions"][0]["parts"][1]["third_party_names"] == ["Kayleigh"]
    assert not any("_html" in key for v in data["plan"]["versions"] for part in v["parts"]
                   for key in part)
    assert data["plan"]["parts"][0]["third_party_names"] == ["Kayleigh"]
    assert not any("_html" in key for part in data["plan"]["parts"] for key in part)


def test_sar_says_when_no_plan_has_been_written(world, ig_client, held):
    page = _produce(ig_client, held["dean"]).content.decode()
    assert "No plan has been written." in page
    assert json.loads(_produce(ig_client, held["dean"], fmt="json").content)["plan"] is None
