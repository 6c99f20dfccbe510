"""The chronology: a family's significant events, oldest first, drawn from the notes a
viewer may read in full and from the case's own events (births, opening, transfers,
closing). Placeholders never appear in it: a note's significance is part of what a
placeholder withholds."""

import csv
import datetime
import io
import re
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, Outcome
from casenotes.actions import (
    do_add_addendum,
    do_close_case,
    do_create_case,
    do_decide_transfer,
    do_open_break_glass,
    do_request_transfer,
)
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


def _csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_chronology_downloads_as_csv_in_the_same_order_and_is_recorded_as_an_export(world):
    worker = world.social_worker
    tom = world.people["tom"]
    world.standard_note(worker, is_significant=True, people=[tom], occurred_at=_days_ago(3),
                        body="=HYPERLINK(\"http://example.com\") Tom excluded from school.")
    world.standard_note(worker, is_significant=True, people=[world.people["ellie"]],
                        occurred_at=_days_ago(2), body="Ellie's GP referral.")
    page = _page(worker, world.case, f"?person={tom.pk}").content.decode()
    url = reverse("casenotes:chronology_export", args=[world.case.pk])
    assert f'href="{url}?person={tom.pk}"' in page
    watch = AuditWatch()
    response = _client(worker).get(f"{url}?person={tom.pk}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="FS-2025-0417-chronology.csv"' in response["Content-Disposition"]
    rows = _csv_rows(response)
    assert rows[0] == ["Date", "What happened", "About", "Recorded by", "Agency", "Note",
                       "Addenda"]
    assert [row[1] for row in rows[1:]] == [
        "Tom Harper born", f"Case opened (child protection plan), allocated to {world.fs_team.name}",
        "Home visit"]
    assert rows[1][0] == "2019-11-02" and rows[1][3] == "The case record"
    assert rows[3][2] == "Tom Harper" and rows[3][3] == worker.get_full_name()
    assert rows[3][5].startswith("'=HYPERLINK")  # a spreadsheet must not run it
    entry = watch.one(AuditAction.CASE_EXPORTED)
    assert_audit(entry, action=AuditAction.CASE_EXPORTED, actor=worker, case_id=world.case.pk,
                 object_type="case", object_id=world.case.pk)
    assert entry.reason == f"chronology: 3 events, about person {tom.pk}"
    assert AuditAction.CHRONOLOGY_VIEWED not in watch.actions()


def test_emergency_access_reads_the_chronology_but_cannot_download_it(world):
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    do_open_break_glass(acting_user=outsider, case=world.case, reason_code="other",
                        reason="Police at the door out of hours.")
    world.standard_note(world.social_worker, is_significant=True, body="A significant visit.")
    page = _page(outsider, world.case)
    assert page.status_code == 200 and "A significant visit." in page.content.decode()
    assert 'id="chronology-download"' not in page.content.decode()
    client = _client(outsider)
    watch = AuditWatch()
    response = client.get(reverse("casenotes:chronology_export", args=[world.case.pk]))
    assert response.status_code == 404 and b"significant visit" not in response.content
    assert watch.actions() == [AuditAction.ACCESS_DENIED]


def test_a_download_about_a_person_not_in_the_family_exports_nothing_and_says_why(world):
    other = world.other_people["kwame"]
    watch = AuditWatch()
    client = _client(world.social_worker)
    response = client.get(reverse("casenotes:chronology_export", args=[world.case.pk])
                          + f"?person={other.pk}")
    assert response.status_code == 302
    assert AuditAction.CASE_EXPORTED not in watch.actions()
    shown = client.get(response["Location"])
    assert shown.status_code == 400 and "Choose a person in this family." in shown.content.decode()


def test_a_download_s_file_name_keeps_only_safe_characters_whatever_the_reference(world):
    case = do_create_case(acting_user=world.team_manager, reference='FS "9"; x=1',
                          family_name="Quinn", category="child_in_need", team=world.fs_team)
    client = _client(world.team_manager)
    for name in ("chronology_export", "case_export"):
        response = client.get(reverse(f"casenotes:{name}", args=[case.pk]))
        assert response.status_code == 200
        disposition = response["Content-Disposition"]
        assert re.fullmatch(r'attachment; filename="FS--9---x-1-(chronology|record)\.csv"',
                            disposition), disposition


def test_a_significant_notes_addenda_are_shown_and_downloaded_with_it(world):
    worker = world.social_worker
    note = world.standard_note(worker, is_significant=True, occurred_at=_days_ago(2),
                               body="Parenting course agreed.")
    addendum = do_add_addendum(acting_user=worker, note=note,
                               body="Correction: the course starts in January.")
    page = _page(worker, world.case).content.decode()
    shown = page.split(f'id="chronology-addendum-{addendum.pk}"', 1)[1].split("</div>\n", 2)
    assert "Correction: the course starts in January." in "".join(shown[:2])
    assert worker.get_full_name() in shown[0]
    rows = _csv_rows(_client(worker).get(reverse("casenotes:chronology_export",
                                                 args=[world.case.pk])))
    row = next(row for row in rows if row[5] == "Parenting course agreed.")
    assert row[6].startswith("Addendum ") and row[6].endswith(
        f"{worker.get_full_name()} (Children's services): Correction: the course starts in January.")
