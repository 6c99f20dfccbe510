"""The caseload page and the search page cost a fixed number of database queries,
however many cases exist and however many of them the user can see; and search shows
a practitioner only what they may see: another team's matching case is an
emergency-access candidate (name, date of birth, reference), never a link to the
family or its notes.

Queries are counted with CaptureQueriesContext on the default connection around one
request through the test client, signed in as a Family Safeguarding social worker:
first with the world's one FS case visible, then again after 29 more FS cases and 200
cases of another team (each with people) have been created through the actions.
"""

import datetime
import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditAction
from casenotes.actions import do_add_person, do_create_case
from casenotes.models import Case, Person
from teams.models import Role
from tests.helpers import AuditWatch

pytestmark = pytest.mark.django_db

#: Matches the world's FS case (Harper) and every case grown below, so the large search
#: fills each result list (cases, people, emergency candidates) to the page limit.
QUERY = "Harper"
MORE_VISIBLE, INVISIBLE = 29, 200
OTHER_TEAM_NOTE = "Kwame told the family support worker about the move to Leeds"

R = Person.RoleInFamily
_references = itertools.count(1)


def _grow(world) -> None:
    """29 more cases for the FS team (30 visible to its social worker) and 200 for the
    locality team (invisible to them), each with two people, all through the actions."""
    fs_manager = world.team_manager
    fs_leads = [world.user(Role.SOCIAL_WORKER, i) for i in (0, 1)]
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    locality_lead = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    batches = [(fs_manager, world.fs_team, fs_leads, "FS", MORE_VISIBLE),
               (locality_manager, world.locality_team, [locality_lead, None], "EH", INVISIBLE)]
    for manager, team, leads, prefix, count in batches:
        for i in range(count):
            number = next(_references)
            case = do_create_case(
                acting_user=manager, reference=f"{prefix}-2025-{5000 + number}",
                family_name=f"Harper {number}", category=Case.Category.CHILD_IN_NEED,
                team=team, lead_practitioner=leads[i % len(leads)],
                opened_on=datetime.date(2025, 1, 1) + datetime.timedelta(days=i % 90),
            )
            for name, role, born in ((f"Child {number} Harper", R.CHILD, datetime.date(2015, 5, 1)),
                                     (f"Parent {number} Harper", R.MOTHER, None)):
                do_add_person(acting_user=manager, case=case, full_name=name,
                              role_in_family=role, date_of_birth=born)
            if i % 10 == 0:  # some cases with activity, so "last activity" has rows to read
                world.standard_note(manager, case=case)


def _statements(client, url: str, status: int = 200) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == status
    return [q["sql"] for q in captured.captured_queries]


def _same_count(small: list[str], large: list[str]) -> None:
    assert len(small) == len(large), (
        f"{len(small)} queries with 1 visible case, {len(large)} with 30 visible among "
        f"{2 + MORE_VISIBLE + INVISIBLE}; the larger page ran:\n" + "\n".join(large)
    )


# --- query counts -------------------------------------------------------------------

def test_caseload_page_runs_the_same_queries_for_1_visible_case_as_for_30_among_231(world, client):
    worker = world.social_worker
    client.force_login(worker)
    response = client.get("/")  # warm-up: per-process caches, the session's first read
    assert len(response.context["cases"]) == 1
    small = _statements(client, "/")

    _grow(world)
    response = client.get("/")
    assert len(response.context["cases"]) == 1 + MORE_VISIBLE
    large = _statements(client, "/")

    _same_count(small, large)


def test_search_page_runs_the_same_queries_for_1_visible_case_as_for_30_among_231(world, client):
    worker = world.social_worker
    client.force_login(worker)
    url = f"{reverse('casenotes:search')}?q={QUERY}"
    response = client.get(url)  # warm-up
    assert [c.pk for c in response.context["results"]["cases"]] == [world.case.pk]
    small = _statements(client, url)

    _grow(world)
    response = client.get(url)
    results = response.context["results"]
    limit = results["limit"]
    # Every list is full: the large page does the most work a search can.
    assert len(results["cases"]) == len(results["people"]) == len(results["candidates"]) == limit
    large = _statements(client, url)

    _same_count(small, large)


# --- what search shows --------------------------------------------------------------

def test_another_teams_matching_case_appears_only_as_an_emergency_access_candidate(world, client):
    other = world.other_case
    world.standard_note(world.locality_users[Role.FAMILY_SUPPORT_WORKER], case=other,
                        body=OTHER_TEAM_NOTE)
    client.force_login(world.social_worker)

    response = client.get(reverse("casenotes:search"), {"q": "Osei"})

    assert response.status_code == 200
    results = response.context["results"]
    assert results["cases"] == [] and results["people"] == []
    assert sorted(results["candidates"], key=lambda c: c["name"]) == [
        {"name": "Abena Osei", "date_of_birth": datetime.date(1985, 2, 3),
         "reference": other.reference, "case_id": other.pk},
        {"name": "Kwame Osei", "date_of_birth": datetime.date(2014, 8, 21),
         "reference": other.reference, "case_id": other.pk},
    ]
    html = response.content.decode()
    candidates = html.split('id="results-candidates"', 1)[1].split("</ul>", 1)[0]
    assert "Kwame Osei, born 21 Aug 2014 (EH-2025-0102)" in candidates
    assert "Abena Osei, born 3 Feb 1985 (EH-2025-0102)" in candidates
    assert f'href="{reverse("casenotes:break_glass", args=[other.pk])}"' in candidates
    # Never the family link, the family's name as a case, or anything from its notes.
    assert f'href="{reverse("casenotes:case_detail", args=[other.pk])}"' not in html
    assert "Osei family" not in html
    assert OTHER_TEAM_NOTE not in html
    assert "Kwame told" not in html


@pytest.mark.parametrize("role", [Role.IG_OFFICER, Role.ADMINISTRATOR])
def test_ig_officers_and_administrators_get_no_cases_people_or_emergency_candidates(world, client, role):
    client.force_login(world.user(role))

    for query in ("Osei", "Harper", world.other_case.reference, world.case.reference):
        response = client.get(reverse("casenotes:search"), {"q": query})
        assert response.status_code == 200
        results = response.context["results"]
        assert (results["cases"], results["people"], results["candidates"]) == ([], [], [])
        html = response.content.decode()
        assert 'id="results-candidates"' not in html
        assert not re.search(r"/cases/\d+/", html)  # no case link, not even break-glass
        assert "Kwame Osei" not in html and "Ellie Harper" not in html


def test_the_bootstrap_superuser_gets_no_emergency_candidates_either(world, client):
    client.force_login(world.bootstrap_admin)
    response = client.get(reverse("casenotes:search"), {"q": "Osei"})
    assert response.status_code == 200
    assert response.context["results"]["candidates"] == []
    assert "Kwame Osei" not in response.content.decode()


@pytest.mark.parametrize("query", ["Os", "  Os  ", "x"])
def test_a_query_shorter_than_3_characters_is_refused_with_400_and_not_audited(world, client, query):
    client.force_login(world.social_worker)
    watch = AuditWatch()

    response = client.get(reverse("casenotes:search"), {"q": query})

    assert response.status_code == 400
    assert "Enter at least 3 characters." in response.content.decode()
    assert response.context["results"] is None
    assert AuditAction.SEARCHED not in watch.actions()


def test_a_valid_search_records_exactly_one_searched_audit_entry(world, client):
    worker = world.social_worker
    client.force_login(worker)
    watch = AuditWatch()

    response = client.get(reverse("casenotes:search"), {"q": "Osei"})

    assert response.status_code == 200
    entry = watch.one(AuditAction.SEARCHED)
    assert entry.actor_id == worker.pk
    assert entry.object_type == "search"
    assert watch.actions().count(AuditAction.SEARCHED) == 1
