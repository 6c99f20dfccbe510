"""The team page and the sign-in pages."""

from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from teams.models import Team


def test_team_page_lists_members_with_role_and_agency_and_visible_cases(demo):
    team = Team.objects.get(name="Northfield Family Safeguarding Team")
    response = demo.client("probation").get(reverse("teams:team_detail", args=[team.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Priya Shah" in html and "Probation officer" in html and "Probation Service" in html
    assert "Ashworth family" in html and "Begum family" in html
    entry = AuditEvent.objects.get(action=AuditAction.TEAM_VIEWED, object_id=str(team.pk))
    assert entry.reason == "2 open cases listed"


def test_team_page_shows_each_case_with_its_lead_legal_basis_plan_review_and_last_activity(demo):
    import datetime
    import re

    from django.utils import timezone

    from casenotes.models import CasePlan

    team = Team.objects.get(name="Northfield Family Safeguarding Team")
    ashworth, begum = demo.case("FS-24-0117"), demo.case("FS-24-0142")
    client = demo.client("team.manager")
    url = reverse("teams:team_detail", args=[team.pk])

    def plan_cell(case) -> str:
        html = client.get(url).content.decode()
        cell = re.search(rf'id="team-plan-{case.pk}">(.*?)</td>', html, re.S)
        assert cell, f"no plan cell for {case.reference}"
        return " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).split())

    html = client.get(url).content.decode()
    row = html[html.index("Ashworth family"):]
    row = row[:row.index("</tr>")]
    assert ashworth.get_category_display() in row and ashworth.lead_practitioner.get_full_name() in row
    assert "No notes yet" not in row  # the demo's notes are its last activity
    review = CasePlan.objects.get(case=ashworth).review_on
    assert plan_cell(ashworth) == f"Review {review.day} {review:%b %Y}"
    assert plan_cell(begum) == "No plan yet"
    soon = timezone.localdate() + datetime.timedelta(days=3)
    CasePlan.objects.filter(case=ashworth).update(review_on=soon)
    assert plan_cell(ashworth) == f"Review {soon.day} {soon:%b %Y} Review due soon"
    past = timezone.localdate() - datetime.timedelta(days=1)
    CasePlan.objects.filter(case=ashworth).update(review_on=past)
    assert plan_cell(ashworth) == f"Review {past.day} {past:%b %Y} Review overdue"


def test_team_page_of_another_team_is_not_found(demo):
    team = Team.objects.get(name="Northfield Locality Early Help")
    for username in ["probation", "ig.officer", "admin"]:
        assert demo.client(username).get(reverse("teams:team_detail", args=[team.pk])).status_code == 404


def test_sign_in_and_out(demo, client):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and "Sign in" in page.content.decode()
    response = client.post(reverse("login"), {"username": "social.worker",
                                              "password": "demo-Safeguarding-2026"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_failed_sign_in_gets_a_clear_message(demo, client):
    response = client.post(reverse("login"), {"username": "social.worker", "password": "wrong"})
    assert response.status_code == 200
    assert "Enter a correct username and password" in response.content.decode()


def test_empty_sign_in_names_each_missing_field(db, client):
    response = client.post(reverse("login"), {"username": "", "password": ""})
    html = response.content.decode()
    assert "Enter your username." in html and "Enter your password." in html
