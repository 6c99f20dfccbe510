"""A case transferred between teams in a real browser, served by Daphne: three people,
each in their own browser context, on `world.case` (FS-2025-0417, the Harper family).

1. The Family Safeguarding team manager asks for the case to move to the locality team,
   with a 28-day hand-over.
2. The locality team manager accepts it from "Transfers"; the case's access page then
   lists the FS team under "Read-only hand-over".
3. An FS social worker can still read the case, under a read-only banner with its end
   date, but cannot add a note: no button, and the form's address is not found.
4. Once the hand-over has ended, the case is not found for them and leaves their caseload.

Data comes from `tests.factories.build_world` (the `world` fixture), whose accounts share
`tests.factories.PASSWORD`, so signing in is done here rather than with
`tests.browser.pages.sign_in` (which uses the demo seed's password).
"""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from casenotes.models import CaseGroupObjectPermission, CaseTransfer
from casenotes.rules import moment_text
from teams.models import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

HANDOVER_DAYS = 28
TRANSFER_REASON = "Risk has reduced: the plan ended; the family agreed to early help support."
DECISION_REASON = "Accepted: a family support worker has capacity to start next week."
CHROMIUM_404_ECHO = "Failed to load resource: the server responded with a status of 404 (Not Found)"


def sign_in(tab, user) -> None:
    page = tab.page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
    expect(page.get_by_role("heading", level=1, name="My caseload")).to_be_visible()


def success_banner(page):
    return page.get_by_role("alert").filter(has_text="Success")


def test_transfer_hands_over_read_only_then_access_ends(world, live_site, open_page):
    case = world.case
    fs_team, locality_team = world.fs_team, world.locality_team
    case_url = f"/cases/{case.pk}/"
    note_form_url = f"/cases/{case.pk}/notes/new/"

    # --- 1. the FS team manager requests the transfer -----------------------------------
    manager = open_page()
    sign_in(manager, world.team_manager)
    page = manager.page
    page.get_by_role("link", name="Harper family").click()
    expect(page.get_by_role("heading", level=1, name="Harper family")).to_be_visible()
    page.get_by_role("link", name="Who has access").click()
    expect(page.get_by_role("heading", level=1, name="Who has access")).to_be_visible()
    page.get_by_role("link", name="Request a transfer").click()
    expect(page.get_by_role("heading", level=1, name="Request a transfer")).to_be_visible()

    page.get_by_label("Transfer to").select_option(label=locality_team.name)
    page.get_by_label("Reason", exact=True).fill(TRANSFER_REASON)
    page.get_by_label("Hand-over period (days)").fill(str(HANDOVER_DAYS))
    page.get_by_role("button", name="Send request").click()

    expect(success_banner(page)).to_contain_text(
        f"Transfer to {locality_team.name} requested. "
        "Its team manager will accept or reject it."
    )
    expect(page).to_have_url(re.compile(rf"/cases/{case.pk}/access/$"))
    transfer = CaseTransfer.objects.get(case=case)
    assert transfer.status == CaseTransfer.Status.REQUESTED
    assert (transfer.from_team, transfer.to_team) == (fs_team, locality_team)
    assert transfer.handover_days == HANDOVER_DAYS
    assert transfer.reason == TRANSFER_REASON
    assert manager.problems == []

    # --- 2. the locality team manager accepts it ----------------------------------------
    receiver = open_page()
    sign_in(receiver, world.locality_users[Role.TEAM_MANAGER])
    rpage = receiver.page
    transfers = rpage.get_by_role("navigation", name="Menu").get_by_role("link", name="Transfers")
    expect(transfers).to_contain_text("1 waiting")  # the request waits for their decision
    transfers.click()
    expect(rpage.get_by_role("heading", level=1, name="Transfer requests")).to_be_visible()
    rpage.locator("#transfers-incoming").get_by_role(
        "link", name=f"Decide on {case.reference}").click()
    expect(rpage.get_by_role("heading", level=1)).to_have_text(
        f"Transfer of the Harper family to {locality_team.name}")
    expect(rpage.locator("#transfer-reason")).to_have_text(TRANSFER_REASON)

    rpage.get_by_role("radio", name="Accept the case").check()
    reason = rpage.get_by_label("Reason for your decision")
    # The form says the reason is needed before it is refused for want of one.
    expect(reason).to_have_accessible_description(re.compile("^Needed whether you accept or reject"))
    reason.fill(DECISION_REASON)
    rpage.get_by_role("button", name="Send decision").click()

    expect(rpage).to_have_url(re.compile(rf"/cases/{case.pk}/access/$"))
    expect(rpage.get_by_role("heading", level=1, name="Who has access")).to_be_visible()
    expect(success_banner(rpage)).to_contain_text(
        f"{case.reference} is now with {locality_team.name}.")
    transfer.refresh_from_db()
    assert transfer.status == CaseTransfer.Status.ACCEPTED
    handover_ends = transfer.handover_ends_at
    assert handover_ends is not None
    expect(rpage.get_by_role("heading", level=2, name="Read-only hand-over")).to_be_visible()
    handover = rpage.locator(f"#access-handover-{fs_team.pk}")
    expect(handover).to_contain_text(fs_team.name)
    expect(handover).to_contain_text(
        f"may read the case until {moment_text(handover_ends)}.")
    assert receiver.problems == []

    # --- 3. an FS social worker: read-only, no way to add a note ------------------------
    worker = open_page()
    sign_in(worker, world.social_worker)
    wpage = worker.page
    # During the hand-over the case is still on their caseload, now with the locality team.
    row = wpage.get_by_role("row").filter(has_text=case.reference)
    expect(row).to_contain_text(locality_team.name)
    row.get_by_role("link", name="Harper family").click()
    expect(wpage.get_by_role("heading", level=1, name="Harper family")).to_be_visible()
    expect(wpage.locator("#handover-banner")).to_contain_text(
        "Read-only: your team handed this case over. Your access lasts until "
        f"{moment_text(handover_ends)}."
    )
    expect(wpage.get_by_role("link", name="Add a note")).to_have_count(0)
    assert worker.problems == []

    response = wpage.goto(note_form_url)
    assert response.status == 404
    expect(wpage.get_by_role("heading", level=1, name="Page not found")).to_be_visible()

    # --- 4. after the hand-over period ---------------------------------------------------
    wpage.goto(case_url)
    expect(wpage.locator("#handover-banner")).to_be_visible()
    # The clock moved past the hand-over: rather than wait 28 days, the FS team's
    # hand-over rows (the only rows with an expiry) are made to have ended a minute ago.
    ended = CaseGroupObjectPermission.objects.filter(
        content_object=case, group=fs_team.group, expires_at__isnull=False,
    ).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert ended >= 1

    response = wpage.reload()
    assert response.status == 404
    expect(wpage.get_by_role("heading", level=1, name="Page not found")).to_be_visible()
    expect(wpage.locator("#handover-banner")).to_have_count(0)

    wpage.get_by_role("navigation", name="Menu").get_by_role("link", name="My caseload").click()
    expect(wpage.get_by_role("heading", level=1, name="My caseload")).to_be_visible()
    expect(wpage.get_by_role("main")).not_to_contain_text(case.reference)
    expect(wpage.get_by_role("link", name="Harper family")).to_have_count(0)
    expect(wpage.get_by_role("main")).to_contain_text("You have no open cases.")

    # The only failures the social worker's tab saw are the two expected not-found pages
    # (each also echoed by Chromium on the console as "Failed to load resource").
    expected_404s = [f"HTTP 404: GET {live_site}{note_form_url}",
                     f"HTTP 404: GET {live_site}{case_url}"]
    assert [p for p in worker.problems if p.startswith("HTTP ")] == expected_404s
    unexpected = [
        p for p in worker.problems
        if p not in expected_404s and p != f"console error: {CHROMIUM_404_ECHO}"
    ]
    assert unexpected == [], worker.problems
    assert manager.problems == [] and receiver.problems == []
