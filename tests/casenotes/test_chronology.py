"""The chronology: a family's significant events, oldest first, drawn from the notes a
viewer may read in full and from the case's own events (births, opening, transfers,
closing). Placeholders never appear in it: a note's significance is part of what a
placeholder withholds."""

import datetime
import re
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, Outcome
from casenotes.actions import do_close_case, do_decide_transfer, do_request_transfer
from teams.models import Role
from tests.helpers import AuditWatch, assert_audit


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(user, case, query: str = ""):
    return _client(user).get(reverse("casenotes:chronology", args=[case.pk]) + query)


def _rows(response) -> list[str]:
    """The chronology table's rows, as text, in order."""
    body = response.content.decode().split('id="chronology"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"govuk-table__row\"[^>]*>(.*?)</tr>", body, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows[1:]]


def _days_ago(days: int, hour: int = 10) -> datetime.datetime:
    day = timezone.localdate() - datetime.timedelta(days=days)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def test_significant_notes_and_the_case_s_own_events_are_listed_oldest_first(world):
    worker, manager = world.social_worker, world.team_manager
    later = world.standard_note(worker, is_significant=True, occurred_at=_days_ago(5),
                                body="Police called to the home overnight.")
    earlier = world.standard_note(worker, is_significant=True, occurred_at=_days_ago(40),
                                  body="Ellie disclosed that Dean hits her mother.")
    world.standard_note(worker, occurred_at=_days_ago(20), body="Routine visit; all well.")
    world.draft(worker, is_significant=True, body="Draft: not yet a record.")
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    transfer = do_request_transfer(acting_user=manager, case=world.case,
                                   to_team=world.locality_team, reason="Stepping down to early help.")
    do_decide_transfer(acting_user=locality_manager, transfer=transfer, accept=True,
                       reason="Agreed at the allocation meeting.")
    do_close_case(acting_user=locality_manager, case=world.case)

    response = _page(worker, world.case)  # the old team's hand-over access still reads
    assert response.status_code == 200
    rows = _rows(response)
    texts = "\n".join(rows)
    assert "Routine visit" not in texts and "Draft: not yet a record" not in texts
    expected = [
        "Ellie Harper born", "Tom Harper born",
        f"Case opened (child protection plan), allocated to {world.fs_team.name}",
        "Ellie disclosed that Dean hits her mother.", "Police called to the home overnight.",
        f"Case transferred from {world.fs_team.name} to {world.locality_team.name}",
        "Case closed",
    ]
    positions = [next(i for i, row in enumerate(rows) if text in row) for text in expected]
    assert positions == sorted(positions) and len(rows) == len(expected)
    assert rows[0].startswith("14 Mar 2016")
    page = response.content.decode()
    assert reverse("casenotes:note_detail", args=[world.case.pk, earlier.pk]) in page
    assert f'id="chronology-note-{later.pk}"' in page


def test_a_restricted_significant_note_is_listed_only_for_its_agency_and_the_manager(world):
    probation = world.user(Role.PROBATION_OFFICER)
    note = world.restricted_note(probation, is_significant=True,
                                 body="Dean breached his licence conditions.")
    for reader in (probation, world.user(Role.PROBATION_OFFICER, 1), world.team_manager):
        page = _page(reader, world.case).content.decode()
        assert "Dean breached his licence conditions." in page
        assert f'id="chronology-note-{note.pk}"' in page
    page = _page(world.social_worker, world.case).content.decode()
    assert "licence" not in page and f"note-{note.pk}" not in page
    assert "Restricted note" not in page  # not even a placeholder


def test_a_sealed_significant_note_is_listed_only_for_its_author_and_named_readers(world):
    author = world.user(Role.DA_VICTIM_WORKER)
    reader = world.social_worker
    note = world.sealed_note(author, readers=[reader], is_significant=True,
                             body="Kayleigh and the children moved to a refuge.")
    for allowed in (author, reader):
        assert "moved to a refuge" in _page(allowed, world.case).content.decode()
    for other in (world.team_manager, world.user(Role.DA_VICTIM_WORKER, 1),
                  world.user(Role.FAMILY_SUPPORT_WORKER)):
        page = _page(other, world.case).content.decode()
        assert "refuge" not in page and f"note-{note.pk}" not in page


def test_the_chronology_about_one_person_lists_their_notes_and_the_family_s_events(world):
    worker = world.social_worker
    tom, ellie = world.people["tom"], world.people["ellie"]
    world.standard_note(worker, is_significant=True, people=[tom], body="Tom excluded from school.")
    world.standard_note(worker, is_significant=True, people=[ellie], body="Ellie's GP referral.")
    watch = AuditWatch()
    response = _page(worker, world.case, f"?person={tom.pk}")
    assert response.status_code == 200
    texts = "\n".join(_rows(response))
    assert "Tom excluded from school." in texts and "Tom Harper born" in texts
    assert "Case opened" in texts
    assert "GP referral" not in texts and "Ellie Harper born" not in texts
    entry = watch.one(AuditAction.CHRONOLOGY_VIEWED)
    assert_audit(entry, action=AuditAction.CHRONOLOGY_VIEWED, actor=worker,
                 case_id=world.case.pk, object_type="case", object_id=world.case.pk)
    assert entry.reason == f"about person {tom.pk}"


ANOTHER_FAMILY = "Choose a person in this family."


@pytest.mark.parametrize(("value", "message"), [
    (lambda world: world.other_people["kwame"].pk, ANOTHER_FAMILY),
    (lambda world: "x", ANOTHER_FAMILY),
    (lambda world: "9" * 30, ANOTHER_FAMILY),
    (lambda world: "1\x00", "Null characters are not allowed."),
], ids=["another-family", "not-a-number", "huge-number", "nul-character"])
def test_a_person_not_in_the_family_gets_a_message_and_the_whole_chronology(world, value, message):
    world.standard_note(world.social_worker, is_significant=True, body="A significant visit.")
    response = _page(world.social_worker, world.case, "?" + urlencode({"person": value(world)}))
    assert response.status_code == 400
    page = response.content.decode()
    assert "govuk-error-summary" in page and message in page
    assert "A significant visit." in page
    assert all(p.full_name not in page for p in world.other_people.values())


@pytest.mark.parametrize("role", [Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_the_chronology_is_not_found_for_those_who_may_not_see_the_case(world, role):
    world.standard_note(world.social_worker, is_significant=True, body="A significant visit.")
    for user in (world.user(role), world.locality_users[Role.SOCIAL_WORKER]):
        watch = AuditWatch()
        response = _page(user, world.case)
        assert response.status_code == 404
        assert "significant visit" not in response.content.decode()
        denial = watch.one(AuditAction.ACCESS_DENIED)
        assert_audit(denial, action=AuditAction.ACCESS_DENIED, actor=user, case_id=world.case.pk,
                     outcome=Outcome.DENIED)
        assert AuditAction.CHRONOLOGY_VIEWED not in watch.actions()


def test_the_chronology_costs_the_same_queries_however_many_notes(world):
    worker = world.social_worker
    world.standard_note(worker, is_significant=True, people=[world.people["tom"]])
    client = _client(worker)
    url = reverse("casenotes:chronology", args=[world.case.pk])
    client.get(url)  # the session and the user's caches warmed once
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(10):
        world.standard_note(worker, is_significant=True, people=[world.people["ellie"]])
    with CaptureQueriesContext(connection) as eleven:
        response = client.get(url)
    assert len(_rows(response)) == 2 + 1 + 11
    assert len(eleven.captured_queries) == len(one.captured_queries)


def test_the_case_page_links_to_the_chronology(world):
    page = _client(world.social_worker).get(
        reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert f'href="{reverse("casenotes:chronology", args=[world.case.pk])}"' in page
