"""The team manager's page for the case itself: changing its legal basis (kept in the
case's history and shown in the chronology) and closing it."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, Outcome
from casenotes.actions import do_change_legal_basis, do_close_case
from casenotes.models import Case, CaseEvent
from casenotes.permissions import NotFound
from teams.models import Role
from tests.helpers import AuditWatch, assert_audit, write_fingerprint

C = Case.Category


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _manage(world):
    return reverse("casenotes:case_manage", args=[world.case.pk])


def test_the_manager_changes_the_legal_basis_with_history_audit_and_a_live_notice(world):
    manager = world.team_manager
    events = CaseEvent.objects.filter(case=world.case).count()
    watch = AuditWatch()
    case = do_change_legal_basis(acting_user=manager, case=world.case, category=C.CHILD_IN_NEED,
                                 reason="Review conference: the plan can end.")
    assert Case.objects.get(pk=case.pk).category == C.CHILD_IN_NEED
    latest = world.case.history.latest("history_date")
    assert latest.category == C.CHILD_IN_NEED and latest.history_user_id == manager.pk
    assert watch.actions() == [AuditAction.LEGAL_BASIS_CHANGED]
    entry = watch.one(AuditAction.LEGAL_BASIS_CHANGED)
    assert_audit(entry, action=AuditAction.LEGAL_BASIS_CHANGED, actor=manager,
                 case_id=world.case.pk, object_type="case", object_id=world.case.pk)
    assert entry.reason == "child protection plan to child in need"
    assert list(CaseEvent.objects.filter(case=world.case).values_list("kind", flat=True)
                )[events:] == [CaseEvent.Kind.CASE_UPDATED]


@pytest.mark.parametrize(("category", "closed", "reason", "message"), [
    (C.CHILD_PROTECTION_PLAN, False, "Conference.", "The legal basis is already child protection plan."),
    ("emergency", False, "Conference.", "Choose the legal basis from the list."),
    (C.CHILD_IN_NEED, True, "Conference.", "This case is closed. Its legal basis cannot be changed."),
    (C.CHILD_IN_NEED, False, "  ", "Enter why the legal basis is changing, for example the "
                                   "decision of a child protection conference."),
], ids=["unchanged", "not-a-basis", "closed-case", "no-reason"])
def test_a_legal_basis_change_that_cannot_be_made_says_why_and_changes_nothing(
        world, category, closed, reason, message):
    if closed:
        do_close_case(acting_user=world.team_manager, case=world.case)
    before = write_fingerprint()
    with pytest.raises(ValidationError) as refused:
        do_change_legal_basis(acting_user=world.team_manager, case=world.case, category=category,
                              reason=reason)
    assert message in refused.value.messages
    assert write_fingerprint() == before


def test_a_legal_basis_change_from_a_page_another_manager_has_overtaken_changes_nothing(world):
    """Two managers change the legal basis at once: the second's page showed the basis
    before the first's change, so it is refused with what it is now, not applied on top
    (its audit entry would name a starting basis that manager never saw)."""
    other_manager = world.user(Role.TEAM_MANAGER, 1)
    page = _client(other_manager).get(_manage(world)).content.decode()
    assert f'name="based_on" value="{C.CHILD_PROTECTION_PLAN}"' in page
    do_change_legal_basis(acting_user=world.team_manager, case=world.case,
                          category=C.CHILD_IN_NEED, reason="Review conference.")
    before = write_fingerprint()
    response = _client(other_manager).post(_manage(world), {
        "intent": "legal_basis", "based_on": C.CHILD_PROTECTION_PLAN,
        "category": C.CHILD_LOOKED_AFTER, "reason": "Court order."})
    assert response.status_code == 400
    assert ("Someone has changed the legal basis to child in need since this page was shown."
            in response.content.decode())
    assert Case.objects.get(pk=world.case.pk).category == C.CHILD_IN_NEED
    assert {k: v for k, v in write_fingerprint().items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"}


@pytest.mark.parametrize("role", [Role.SOCIAL_WORKER, Role.PROBATION_OFFICER, Role.IG_OFFICER])
def test_only_the_case_manager_may_change_the_legal_basis(world, role):
    before = write_fingerprint()
    with pytest.raises(NotFound):
        do_change_legal_basis(acting_user=world.user(role), case=world.case,
                              category=C.CHILD_IN_NEED, reason="Conference.")
    assert write_fingerprint() == before


def test_the_manage_page_is_the_managers_alone_and_opening_it_is_recorded(world):
    case_page = _client(world.team_manager).get(
        reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert f'href="{_manage(world)}"' in case_page
    watch = AuditWatch()
    page = _client(world.team_manager).get(_manage(world))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Change the legal basis" in html and "Close the case" in html
    entry = watch.one(AuditAction.CASE_FORM_VIEWED)
    assert entry.reason == "case management form" and entry.case_id == world.case.pk
    worker = world.social_worker
    assert _manage(world) not in _client(worker).get(
        reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    client = _client(worker)
    watch = AuditWatch()
    assert client.get(_manage(world)).status_code == 404
    denial = watch.one(AuditAction.ACCESS_DENIED)
    assert_audit(denial, action=AuditAction.ACCESS_DENIED, actor=worker, case_id=world.case.pk,
                 outcome=Outcome.DENIED)
    before = write_fingerprint()
    watch = AuditWatch()
    assert client.post(_manage(world), {"intent": "close", "confirm": "on"}).status_code == 404
    assert client.post(_manage(world), {"intent": "legal_basis",
                                        "category": C.CHILD_IN_NEED}).status_code == 404
    after = write_fingerprint()
    assert watch.actions() == [AuditAction.ACCESS_DENIED] * 2  # each refusal recorded
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"}


def test_the_legal_basis_changed_from_the_page_shows_on_the_case_and_in_the_chronology(world):
    client = _client(world.team_manager)
    response = client.post(_manage(world), {
        "intent": "legal_basis", "category": C.CHILD_IN_NEED,
        "reason": "  Review conference on 20 Nov: the plan can end.  "})
    assert response.status_code == 302
    assert response["Location"] == reverse("casenotes:case_detail", args=[world.case.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Legal basis changed." in page and "FS-2025-0417 · Child in need" in page
    chronology = client.get(reverse("casenotes:chronology", args=[world.case.pk])).content.decode()
    opened = chronology.index("Case opened (child protection plan)")
    changed = chronology.index("Legal basis changed from child protection plan to child in need: "
                               "Review conference on 20 Nov: the plan can end.")
    assert opened < changed
    world.case.refresh_from_db()
    assert world.case.category_reason == "Review conference on 20 Nov: the plan can end."
    history = client.get(reverse("casenotes:case_history", args=[world.case.pk])).content.decode()
    assert "Why the legal basis changed" in history
    assert "<ins>Review conference on 20 Nov: the plan can end.</ins>" in history


@pytest.mark.parametrize(("post", "message"), [
    ({"intent": "legal_basis", "category": "emergency"}, "Choose the legal basis from the list."),
    ({"intent": "legal_basis", "category": C.CHILD_PROTECTION_PLAN, "reason": "Conference."},
     "The legal basis is already child protection plan."),
    ({"intent": "legal_basis", "category": C.CHILD_IN_NEED, "reason": " "},
     "Enter why the legal basis is changing"),
    ({"intent": "legal_basis", "category": C.CHILD_IN_NEED, "reason": "x" * 501},
     "The reason must be 500 characters or fewer"),
    ({"intent": "close"}, "Confirm that the case is to be closed"),
    ({}, "Choose what to change, then use its button."),
    ({"intent": "reopen"}, "Choose what to change, then use its button."),
], ids=["not-a-basis", "unchanged", "no-reason", "reason-too-long", "close-unconfirmed",
        "no-intent", "unknown-intent"])
def test_bad_input_on_the_manage_page_gets_a_message_and_changes_nothing(world, post, message):
    client = _client(world.team_manager)
    before = write_fingerprint()
    response = client.post(_manage(world), post)
    assert response.status_code == 400
    html = response.content.decode()
    assert "govuk-error-summary" in html and message in html
    assert write_fingerprint()["cases"] == before["cases"]
    assert write_fingerprint()["history"] == before["history"]


def test_closing_the_case_from_the_page_is_final_and_confirmed(world):
    client = _client(world.team_manager)
    response = client.post(_manage(world), {"intent": "close", "confirm": "on"})
    assert response.status_code == 302
    case = Case.objects.get(pk=world.case.pk)
    assert case.status == Case.Status.CLOSED and case.closed_on is not None
    page = client.get(response["Location"]).content.decode()
    assert "Case closed." in page and "· Closed" in page
    manage = client.get(_manage(world)).content.decode()
    assert 'id="case-closed-on"' in manage and "Close the case</button>" not in manage
    again = client.post(_manage(world), {"intent": "legal_basis", "category": C.CHILD_IN_NEED})
    assert again.status_code in (400, 404)
    assert Case.objects.get(pk=world.case.pk).category == C.CHILD_PROTECTION_PLAN


def test_closing_warns_who_has_unfinished_drafts_and_a_closed_cases_draft_opens_read_only(world):
    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    draft = world.draft(worker, body="Half a visit note (marker D-41).")
    world.draft(worker)
    world.draft(probation)
    world.standard_note(probation)  # finished: not listed
    manager = _client(world.team_manager)
    page = manager.get(_manage(world)).content.decode()
    warning = page.split('id="unfinished-drafts"', 1)[1].split("</div>", 1)[0]
    assert f"<li>{probation.get_full_name()}: 1 draft</li>" in warning
    assert f"<li>{worker.get_full_name()}: 2 drafts</li>" in warning
    assert "D-41" not in page and "Home visit" not in warning  # names and counts only

    do_close_case(acting_user=world.team_manager, case=world.case)
    assert 'id="unfinished-drafts"' not in manager.get(_manage(world)).content.decode()
    author = _client(worker)
    response = author.get(reverse("casenotes:note_edit", args=[world.case.pk, draft.pk]),
                          follow=True)
    assert response.redirect_chain[-1][0] == reverse("casenotes:note_detail",
                                                     args=[world.case.pk, draft.pk])
    html = response.content.decode()
    assert "This case is closed. Drafts on it can no longer be changed or finalised" in html
    assert "D-41" in html  # the author still reads what they wrote
