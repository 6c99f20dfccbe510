"""The family's people: anyone who may add to the case adds a child or adult to the
family, and corrects a person's name, role or date of birth. Every version is kept in
the case's history, each change is audited (field names only, never values) and
announced live; an edit of details changed meanwhile is refused with both versions
shown; bad input changes nothing."""

import datetime
import re

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, Outcome
from casenotes.actions import (
    PersonChanged,
    do_close_case,
    do_set_specialist_agency,
    do_update_person,
)
from casenotes.models import CaseEvent, Person
from casenotes.permissions import NotFound
from teams.models import Role
from tests.helpers import AuditWatch, assert_audit, write_fingerprint

R = Person.RoleInFamily


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _add_url(world):
    return reverse("casenotes:person_add", args=[world.case.pk])


def _edit_url(world, person):
    return reverse("casenotes:person_edit", args=[world.case.pk, person.pk])


def _new_person(**fields):
    return {"full_name": "Baby Harper", "role_in_family": R.CHILD, "birth_day": "2",
            "birth_month": "11", "birth_year": "2026", **fields}


def _details(person, **fields):
    born = person.date_of_birth
    return {"full_name": person.full_name, "role_in_family": person.role_in_family,
            "birth_day": born.day if born else "", "birth_month": born.month if born else "",
            "birth_year": born.year if born else "", "based_on": person.details_version,
            **fields}


def _event_kinds(world) -> list[str]:
    return list(CaseEvent.objects.filter(case=world.case).order_by("seq")
                .values_list("kind", flat=True))


def _without_audit(fingerprint: dict) -> dict:
    return {key: value for key, value in fingerprint.items() if key != "audit"}


def _assert_only_the_form_was_read(before: dict, watch: AuditWatch) -> None:
    """Nothing written but the audit entry of the form shown again with its message."""
    assert _without_audit(write_fingerprint()) == _without_audit(before)
    assert watch.actions() == [AuditAction.CASE_FORM_VIEWED]


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- adding a person ----------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.SOCIAL_WORKER, Role.TEAM_MANAGER, Role.PROBATION_OFFICER])
def test_anyone_who_adds_to_the_case_adds_a_person_with_history_audit_and_a_live_notice(
        world, role):
    user = world.user(role)
    client = _client(user)
    case_page = client.get(reverse("casenotes:case_detail", args=[world.case.pk]))
    assert f'href="{_add_url(world)}"' in case_page.content.decode()
    events_before = _event_kinds(world)
    watch = AuditWatch()
    response = client.post(_add_url(world), _new_person(birth_year="2025"))
    assert response.status_code == 302
    assert response.url == reverse("casenotes:case_detail", args=[world.case.pk])
    assert _messages(response) == ["Baby Harper added to the family."]
    person = Person.objects.get(case=world.case, full_name="Baby Harper")
    assert (person.role_in_family, person.date_of_birth) == (R.CHILD, datetime.date(2025, 11, 2))
    version = person.history.get()
    assert version.history_type == "+" and version.history_user_id == user.pk
    assert watch.actions() == [AuditAction.PERSON_ADDED]
    assert_audit(watch.one(AuditAction.PERSON_ADDED), action=AuditAction.PERSON_ADDED, actor=user,
                 case_id=world.case.pk, object_type="person", object_id=person.pk)
    assert _event_kinds(world) == [*events_before, CaseEvent.Kind.PERSON_ADDED]
    page = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert "Baby Harper" in page


def test_a_whole_family_is_added_one_after_another_from_the_same_form(world):
    client = _client(world.social_worker)
    first = client.post(_add_url(world), {**_new_person(full_name="Ava Harper"), "then": "another"})
    assert first.status_code == 302 and first.url == _add_url(world)
    assert _messages(first) == ["Ava Harper added to the family."]
    form = client.get(first.url).content.decode()
    assert "Ava Harper added to the family." in form and 'value="Ava Harper"' not in form
    last = client.post(_add_url(world), _new_person(full_name="Noah Harper"))
    assert last.url == reverse("casenotes:case_detail", args=[world.case.pk])
    assert set(Person.objects.filter(full_name__in=["Ava Harper", "Noah Harper"])
               .values_list("full_name", flat=True)) == {"Ava Harper", "Noah Harper"}


def test_the_add_person_form_sent_twice_adds_one_person(world):
    """The page carries its own key: the same form sent again (a retry, a resend, no
    JavaScript to stop a second click) finds the person it added, and says so."""
    client = _client(world.social_worker)
    page = client.get(_add_url(world)).content.decode()
    key = re.search(r'name="client_ref" value="([0-9a-f-]{36})"', page)[1]
    client.post(_add_url(world), _new_person(client_ref=key))
    again = client.post(_add_url(world), _new_person(client_ref=key))
    assert again["Location"] == reverse("casenotes:case_detail", args=[world.case.pk])
    assert _messages(again)[-1] == ("Baby Harper was already added to the family. "
                                    "They have not been added again.")
    assert world.case.people.filter(full_name="Baby Harper").count() == 1
    # Twins with the same name, each from a page of its own, are two people.
    other = re.search(r'name="client_ref" value="([0-9a-f-]{36})"',
                      client.get(_add_url(world)).content.decode())[1]
    client.post(_add_url(world), _new_person(client_ref=other))
    assert world.case.people.filter(full_name="Baby Harper").count() == 2


def test_a_person_whose_date_of_birth_is_not_known_is_added_without_one(world):
    response = _client(world.social_worker).post(_add_url(world), _new_person(
        full_name="Lee Walsh", role_in_family=R.OTHER_ADULT, birth_day="", birth_month="",
        birth_year=""))
    assert response.status_code == 302
    assert Person.objects.get(full_name="Lee Walsh").date_of_birth is None


def _tomorrow():
    return timezone.localdate() + datetime.timedelta(days=1)


@pytest.mark.parametrize(("fields", "message"), [
    ({"full_name": "   "}, "Enter the person&#x27;s full name."),
    ({"full_name": "x" * 201}, "The name must be 200 characters or fewer."),
    ({"role_in_family": ""}, "Choose their role in the family."),
    ({"role_in_family": "lodger"}, "Choose their role in the family."),
    ({"birth_day": "31", "birth_month": "2"}, "Enter a real date of birth, for example 27 3 2019"),
    ({"birth_month": ""}, "Enter a real date of birth, for example 27 3 2019"),
    ({"birth_year": "1850"}, "Enter a real date of birth, for example 27 3 2019"),
    ({"birth_day": "x"}, "Enter a real date of birth, for example 27 3 2019"),
    ({"birth_day": str(_tomorrow().day), "birth_month": str(_tomorrow().month),
      "birth_year": str(_tomorrow().year)}, "The date of birth must be today or in the past."),
], ids=["no-name", "long-name", "no-role", "unknown-role", "no-such-day", "part-of-a-date",
        "before-1900", "not-a-number", "born-tomorrow"])
def test_bad_input_for_a_new_person_gets_a_message_and_changes_nothing(world, fields, message):
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_add_url(world), _new_person(**fields))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "There is a problem" in html
    assert html.count('class="govuk-error-summary"') == 1
    _assert_only_the_form_was_read(before, watch)


def test_nobody_is_added_to_a_closed_case_and_its_form_says_why(world):
    do_close_case(acting_user=world.team_manager, case=world.case)
    client = _client(world.social_worker)
    case_page = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert _add_url(world) not in case_page
    assert _edit_url(world, world.people["ellie"]) not in case_page
    form = client.get(_add_url(world)).content.decode()
    assert "People cannot be added to a closed case." in form and 'name="full_name"' not in form
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_add_url(world), _new_person())
    assert response.status_code == 400
    assert "This case is closed. People cannot be added to a closed case." in response.content.decode()
    _assert_only_the_form_was_read(before, watch)


@pytest.mark.parametrize("who", ["other team", "IG officer", "administrator"])
def test_those_who_may_not_add_to_the_case_get_not_found_a_denial_and_no_change(world, who):
    user = {"other team": world.locality_users[Role.SOCIAL_WORKER],
            "IG officer": world.user(Role.IG_OFFICER),
            "administrator": world.user(Role.ADMINISTRATOR)}[who]
    client = _client(user)
    for url in (_add_url(world), _edit_url(world, world.people["kayleigh"])):
        before = write_fingerprint()
        watch = AuditWatch()
        assert client.get(url).status_code == 404
        post = _new_person() if url == _add_url(world) else _details(
            world.people["kayleigh"], full_name="Someone Else")
        assert client.post(url, post).status_code == 404
        assert write_fingerprint()["people"] == before["people"]
        assert [e.outcome for e in watch.new()] == [Outcome.DENIED, Outcome.DENIED]


def test_opening_either_form_is_a_recorded_read(world):
    client = _client(world.social_worker)
    kayleigh = world.people["kayleigh"]
    for url, object_type, object_id, reason in [
        (_add_url(world), "case", world.case.pk, "add person form"),
        (_edit_url(world, kayleigh), "person", kayleigh.pk, "person details form"),
    ]:
        watch = AuditWatch()
        assert client.get(url).status_code == 200
        entry = watch.one(AuditAction.CASE_FORM_VIEWED)
        assert_audit(entry, action=AuditAction.CASE_FORM_VIEWED, actor=world.social_worker,
                     case_id=world.case.pk, object_type=object_type, object_id=object_id)
        assert entry.reason == reason


# --- changing a person's details ----------------------------------------------------

def test_a_person_s_details_are_corrected_with_each_version_kept_and_only_field_names_audited(world):
    kayleigh = world.people["kayleigh"]
    client = _client(world.social_worker)
    case_page = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert f'href="{_edit_url(world, kayleigh)}"' in case_page
    form = client.get(_edit_url(world, kayleigh)).content.decode()
    assert 'value="Kayleigh Harper"' in form and 'value="1991"' in form
    assert f'name="based_on" value="{kayleigh.details_version}"' in form
    events_before = _event_kinds(world)
    watch = AuditWatch()
    response = client.post(_edit_url(world, kayleigh), _details(
        kayleigh, full_name="Kayleigh Harper-Jones", birth_day="29"))
    assert response.status_code == 302
    assert _messages(response) == ["Details of Kayleigh Harper-Jones saved."]
    kayleigh.refresh_from_db()
    assert (kayleigh.full_name, kayleigh.date_of_birth) == (
        "Kayleigh Harper-Jones", datetime.date(1991, 6, 29))
    versions = list(kayleigh.history.order_by("history_id"))
    assert [v.full_name for v in versions] == ["Kayleigh Harper", "Kayleigh Harper-Jones"]
    assert versions[-1].history_user_id == world.social_worker.pk
    assert watch.actions() == [AuditAction.PERSON_UPDATED]
    entry = watch.one(AuditAction.PERSON_UPDATED)
    assert_audit(entry, action=AuditAction.PERSON_UPDATED, actor=world.social_worker,
                 case_id=world.case.pk, object_type="person", object_id=kayleigh.pk)
    assert entry.reason == "changed: name, date of birth"
    assert "Kayleigh" not in entry.reason and "1991" not in entry.reason
    assert _event_kinds(world) == [*events_before, CaseEvent.Kind.CASE_UPDATED]
    history = client.get(reverse("casenotes:case_history", args=[world.case.pk])).content.decode()
    assert "Kayleigh Harper-Jones" in history and "Kayleigh Harper<" in history


def test_saving_the_details_unchanged_writes_nothing_and_says_so(world):
    tom = world.people["tom"]
    before = write_fingerprint()
    events_before = _event_kinds(world)
    response = _client(world.social_worker).post(_edit_url(world, tom), _details(tom))
    assert response.status_code == 302
    assert _messages(response) == ["Nothing was changed in the details of Tom Harper."]
    assert write_fingerprint()["people"] == before["people"]
    assert write_fingerprint()["history"] == before["history"]
    assert _event_kinds(world) == events_before


def test_an_edit_of_details_changed_meanwhile_is_refused_showing_both_and_the_next_save_counts(world):
    dean = world.people["dean"]
    mine = _details(dean, full_name="Dean Walshe")  # the page as I opened it
    do_update_person(acting_user=world.team_manager, person=dean,
                     based_on=dean.details_version, full_name="Dean Walsh-Smith",
                     role_in_family=R.STEP_PARENT, date_of_birth=dean.date_of_birth)
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_edit_url(world, dean), mine)
    assert response.status_code == 400
    html = response.content.decode()
    assert "details were changed by someone else while you had this page open" in html
    assert 'id="saved-now"' in html and "Step-parent" in html  # what is saved now
    assert "<h1 class=\"govuk-heading-l\">Change the details of Dean Walsh-Smith</h1>" in html
    assert 'value="Dean Walshe"' in html  # what I typed, still there
    dean.refresh_from_db()
    assert f'name="based_on" value="{dean.details_version}"' in html
    _assert_only_the_form_was_read(before, watch)
    # Saving again from that page is based on the version it showed: it goes through.
    again = client.post(_edit_url(world, dean), {**mine, "based_on": dean.details_version})
    assert again.status_code == 302
    dean.refresh_from_db()
    assert (dean.full_name, dean.role_in_family) == ("Dean Walshe", R.PARENTS_PARTNER)


def test_the_stale_edit_is_refused_by_the_action_itself(world):
    ellie = world.people["ellie"]
    stale = ellie.details_version
    do_update_person(acting_user=world.social_worker, person=ellie, based_on=stale,
                     full_name="Ellie May Harper", role_in_family=R.CHILD,
                     date_of_birth=ellie.date_of_birth)
    before = write_fingerprint()
    with pytest.raises(PersonChanged) as refused:
        do_update_person(acting_user=world.team_manager, person=ellie, based_on=stale,
                         full_name="Elly Harper", role_in_family=R.CHILD,
                         date_of_birth=ellie.date_of_birth)
    assert refused.value.current.full_name == "Ellie May Harper"
    assert write_fingerprint() == before


@pytest.mark.parametrize(("fields", "message"), [
    ({"full_name": ""}, "Enter the person&#x27;s full name."),
    ({"role_in_family": "cousin"}, "Choose their role in the family."),
    ({"birth_day": "30", "birth_month": "2"}, "Enter a real date of birth"),
    ({"based_on": ""}, "Reload the page and make your changes again."),
    ({"based_on": "abc"}, "Reload the page and make your changes again."),
], ids=["no-name", "unknown-role", "no-such-day", "no-version", "bad-version"])
def test_bad_input_for_a_person_s_details_gets_a_message_and_changes_nothing(world, fields, message):
    kayleigh = world.people["kayleigh"]
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_edit_url(world, kayleigh), _details(kayleigh, **fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    _assert_only_the_form_was_read(before, watch)


def test_an_adult_with_a_specialist_agency_cannot_be_recorded_as_a_child(world):
    dean = world.people["dean"]
    do_set_specialist_agency(acting_user=world.social_worker, person=dean,
                             agency=world.user(Role.PROBATION_OFFICER).memberships.get().agency)
    dean.refresh_from_db()
    client = _client(world.social_worker)
    before, watch = write_fingerprint(), AuditWatch()
    response = client.post(_edit_url(world, dean), _details(dean, role_in_family=R.CHILD))
    assert response.status_code == 400
    assert "Dean Walsh has a specialist agency recorded, which is for adults only." in \
        response.content.decode()
    _assert_only_the_form_was_read(before, watch)


def test_details_on_a_closed_case_cannot_be_changed(world):
    ellie = world.people["ellie"]
    do_close_case(acting_user=world.team_manager, case=world.case)
    before = write_fingerprint()
    with pytest.raises(ValidationError) as refused:
        do_update_person(acting_user=world.social_worker, person=ellie,
                         based_on=ellie.details_version, full_name="Ellie Harper-Smith",
                         role_in_family=R.CHILD, date_of_birth=ellie.date_of_birth)
    assert "This case is closed. The details of its people cannot be changed." in \
        refused.value.messages
    assert write_fingerprint() == before
    form = _client(world.social_worker).get(_edit_url(world, ellie)).content.decode()
    assert "The details of its people cannot be changed." in form and 'name="full_name"' not in form


def test_a_person_of_another_family_is_not_found_through_this_case(world):
    kwame = world.other_people["kwame"]
    url = reverse("casenotes:person_edit", args=[world.case.pk, kwame.pk])
    client = _client(world.social_worker)
    before = write_fingerprint()
    assert client.get(url).status_code == 404
    assert client.post(url, _details(kwame, full_name="Changed")).status_code == 404
    assert _without_audit(write_fingerprint()) == _without_audit(before)


def test_the_action_refuses_those_who_may_not_add_to_the_case(world):
    kwame = world.other_people["kwame"]
    before = write_fingerprint()
    with pytest.raises(NotFound):
        do_update_person(acting_user=world.social_worker, person=kwame,
                         based_on=kwame.details_version, full_name="Changed",
                         role_in_family=R.CHILD, date_of_birth=None)
    assert write_fingerprint() == before
