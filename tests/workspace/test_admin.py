"""The administration site: organisation records with history and object permissions,
never a note body; every save goes through the actions."""

import re

import pytest
from django.contrib import admin
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from audit import actions as audit_actions
from audit.models import AuditAction, AuditEvent
from casenotes.actions import do_add_keyworker
from casenotes.management.commands.seed_demo import DEMO_PASSWORD
from casenotes.models import (
    Addendum,
    Case,
    CaseGroupObjectPermission,
    CaseNote,
    CaseUserObjectPermission,
)
from teams.models import Agency, Membership


def test_notes_and_addenda_are_not_in_the_admin():
    assert CaseNote not in admin.site._registry
    assert Addendum not in admin.site._registry
    assert not any("casenote" in model._meta.model_name for model in admin.site._registry)


def test_no_admin_page_shows_a_note_body(demo):
    bodies = list(CaseNote.objects.values_list("body", flat=True))
    client = demo.client("admin")
    index = client.get(reverse("admin:index")).content.decode()
    pages = set(re.findall(r'href="(/admin/[a-z_]+/[a-z_]+/)"', index))
    case = demo.case()
    pages |= {
        reverse("admin:casenotes_case_change", args=[case.pk]),
        reverse("admin:casenotes_case_history", args=[case.pk]),
        reverse("admin:teams_team_change", args=[case.allocated_team_id]),
    }
    assert len(pages) >= 6
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for body in bodies:
            assert body[:40] not in html, url


def test_case_admin_shows_object_permissions_and_history(demo):
    case = demo.case()
    client = demo.client("admin")
    change = client.get(reverse("admin:casenotes_case_change", args=[case.pk])).content.decode()
    assert "team Northfield Family Safeguarding Team: view_case" in change
    assert "contribute_to_case" in change
    history = client.get(reverse("admin:casenotes_case_history", args=[case.pk]))
    assert history.status_code == 200
    assert "Tara Okafor" in history.content.decode() or "team.manager" in history.content.decode()


def test_saving_an_agency_in_the_admin_goes_through_the_action(demo):
    client = demo.client("admin")
    response = client.post(reverse("admin:teams_agency_add"), {
        "name": "Northfield Youth Justice Service", "short_name": "Youth justice", "kind": "other",
    })
    agency = Agency.objects.get(name="Northfield Youth Justice Service")
    assert response.status_code == 302
    assert agency.history.get().history_user == demo.user("admin")
    assert AuditEvent.objects.filter(action=AuditAction.AGENCY_SAVED, object_id=str(agency.pk)).exists()


def test_records_cannot_be_deleted_in_the_admin(demo):
    client = demo.client("admin")
    agency = Agency.objects.first()
    response = client.get(reverse("admin:teams_agency_delete", args=[agency.pk]))
    assert response.status_code == 403
    assert Agency.objects.filter(pk=agency.pk).exists()


def test_practitioners_cannot_reach_the_admin(demo):
    response = demo.client("team.manager").get(reverse("admin:index"))
    assert response.status_code == 302


def test_deactivating_an_account_in_the_admin_is_audited_and_kept_in_history(demo):
    client = demo.client("admin")
    user = demo.user("recovery")
    page = client.get(reverse("admin:auth_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items()
            if value is not None and name not in {"password", "groups", "user_permissions",
                                                  "last_login", "date_joined"}}
    data.update(is_active="", date_joined_0=user.date_joined.strftime("%Y-%m-%d"),
                date_joined_1=user.date_joined.strftime("%H:%M:%S"))
    data.pop("is_active")
    response = client.post(reverse("admin:auth_user_change", args=[user.pk]), data)
    user.refresh_from_db()
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert user.is_active is False
    event = AuditEvent.objects.get(action=AuditAction.USER_SAVED, object_id=str(user.pk))
    assert "is_active" in event.reason
    assert user.history.first().history_user == demo.user("admin")


def test_a_version_address_that_is_not_a_version_number_is_not_found(demo):
    client = demo.client("admin")
    user = demo.user("recovery")
    for version in ("password", "x1", "-1"):
        url = f"/admin/auth/user/{user.pk}/history/{version}/"
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("selected", ["99999999999999999999999", "-99999999999999999999999",
                                      "abc"])
def test_a_list_action_on_a_record_that_cannot_exist_gets_a_message_and_does_nothing(demo, selected):
    from django.contrib.messages import get_messages

    client = demo.client("admin")
    before = AuditEvent.objects.filter(action=AuditAction.SESSIONS_ENDED).count()
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "end_sessions", "_selected_action": [selected], "index": "0"})
    assert response.status_code == 302  # back to the list, with the message
    assert response.url == reverse("admin:auth_user_changelist")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Choose the records from the list, then the action."]
    assert AuditEvent.objects.filter(action=AuditAction.SESSIONS_ENDED).count() == before


def test_the_password_button_on_an_accounts_pages_and_its_versions_leads_to_its_password_page(demo):
    client = demo.client("admin")
    user = demo.user("recovery")
    password_page = reverse("admin:auth_user_password_change", args=[user.pk])
    version = user.history.order_by("-history_id").first()
    for url in (reverse("admin:auth_user_change", args=[user.pk]),
                reverse("admin:auth_user_simple_history", args=[user.pk, version.history_id])):
        page = client.get(url)
        assert page.status_code == 200, url
        assert re.findall(r'<a class="button" href="([^"]+)"', page.content.decode()) == [
            password_page], url
    assert client.get(password_page).status_code == 200


def test_the_account_form_sets_no_groups_or_permissions_only_memberships_give_team_access(demo):
    client = demo.client("admin")
    page = client.get(reverse("admin:auth_user_change", args=[demo.user("recovery").pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="groups"' not in html and 'name="user_permissions"' not in html
    assert "Teams, agencies and roles are set under Memberships." in html


def _case_data_pages(demo) -> dict[str, set[int]]:
    """Every administration page that shows case data, with the cases it shows."""
    case = demo.case()
    outsider = Membership.objects.exclude(team=case.allocated_team).exclude(team=None).first().user
    do_add_keyworker(acting_user=demo.user("team.manager"), case=case, user=outsider)
    version = case.history.order_by("-history_id").first()
    team_row = CaseGroupObjectPermission.objects.filter(content_object=case).first()
    user_row = CaseUserObjectPermission.objects.filter(content_object=case).first()
    assert team_row is not None and user_row is not None
    team = case.allocated_team
    team_version = team.history.order_by("-history_id").first()
    teams_cases = set(CaseGroupObjectPermission.objects.filter(group_id=team.group_id)
                      .values_list("content_object_id", flat=True))
    assert len(Case.objects.all()) < 100 and CaseGroupObjectPermission.objects.count() < 100
    return {
        reverse("admin:casenotes_case_changelist"): set(Case.objects.values_list("pk", flat=True)),
        reverse("admin:casenotes_case_change", args=[case.pk]): {case.pk},
        reverse("admin:casenotes_case_history", args=[case.pk]): {case.pk},
        reverse("admin:casenotes_case_simple_history", args=[case.pk, version.history_id]):
            {case.pk},
        reverse("admin:casenotes_casegroupobjectpermission_changelist"): set(
            CaseGroupObjectPermission.objects.values_list("content_object_id", flat=True)),
        reverse("admin:casenotes_casegroupobjectpermission_change", args=[team_row.pk]): {case.pk},
        reverse("admin:casenotes_caseuserobjectpermission_changelist"): set(
            CaseUserObjectPermission.objects.values_list("content_object_id", flat=True)),
        reverse("admin:casenotes_caseuserobjectpermission_change", args=[user_row.pk]): {case.pk},
        reverse("admin:casenotes_caseuserobjectpermission_history", args=[user_row.pk]): {case.pk},
        reverse("admin:teams_team_change", args=[team.pk]): teams_cases,
        reverse("admin:teams_team_simple_history", args=[team.pk, team_version.history_id]):
            teams_cases,
    }


def test_every_admin_page_that_shows_case_data_writes_an_entry_for_each_case_it_shows(demo):
    client = demo.client("admin")
    admin_user = demo.user("admin")
    for url, cases in _case_data_pages(demo).items():
        before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        response = client.get(url)
        assert response.status_code == 200, url
        entries = list(AuditEvent.objects.filter(id__gt=before))
        assert {(e.action, e.actor_id) for e in entries} == {
            (AuditAction.ADMIN_CASE_DATA_VIEWED, admin_user.pk)}, url
        # One entry per case, so each read is in that case's access report.
        assert sorted(e.case_id for e in entries) == sorted(cases), url


def test_admin_pages_without_case_data_write_no_read_entry(demo):
    client = demo.client("admin")
    before = AuditEvent.objects.count()
    for url in (reverse("admin:index"), reverse("admin:teams_agency_changelist"),
                reverse("admin:teams_team_changelist"), reverse("admin:auth_user_changelist")):
        assert client.get(url).status_code == 200, url
    assert not AuditEvent.objects.filter(action=AuditAction.ADMIN_CASE_DATA_VIEWED).exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_an_admin_page_of_case_data_whose_entry_cannot_be_written_shows_nothing(demo, monkeypatch):
    case = demo.case()
    pages = _case_data_pages(demo)
    client = Client(raise_request_exception=False)
    assert client.login(username="admin", password=DEMO_PASSWORD)
    # Each page shows the case's reference while its entry can be written...
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200 and case.reference in response.content.decode(), url

    def store_down(events):
        raise DatabaseError("the audit table cannot be written")

    monkeypatch.setattr(audit_actions, "_write", store_down)
    # ...and none of it when the entry cannot be.
    for url in pages:
        response = client.get(url)
        assert response.status_code == 500, url
        assert case.reference not in response.content.decode(), url
