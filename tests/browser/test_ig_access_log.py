"""The access log in a real browser, served by Daphne: a practitioner opens the Harper
case (`world.case`, FS-2025-0417); an information-governance officer finds that read by
searching the log for the case reference over today, and downloads the entries as CSV.

Data comes from `tests.factories.build_world` (the `world` fixture), whose accounts share
`tests.factories.PASSWORD`; signing in is the same as in test_transfer_handover.py.
"""

import csv
import io
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditAction, AuditEvent
from teams.models import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(tab, user, home: str = "My caseload") -> None:
    page = tab.page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
    expect(page.get_by_role("heading", level=1, name=home)).to_be_visible()


def test_ig_officer_finds_a_case_read_in_the_access_log_and_downloads_it(
        world, live_site, open_page):
    case = world.case
    practitioner = world.social_worker
    officer = world.user(Role.IG_OFFICER)

    # --- the practitioner opens the case ---------------------------------------------
    worker = open_page()
    sign_in(worker, practitioner)
    wpage = worker.page
    wpage.get_by_role("link", name="Harper family").click()
    expect(wpage.get_by_role("heading", level=1, name="Harper family")).to_be_visible()
    assert AuditEvent.objects.filter(actor_id=practitioner.pk, case_id=case.pk,
                                     action=AuditAction.CASE_VIEWED).count() == 1
    assert worker.problems == []

    # --- the IG officer searches the access log --------------------------------------
    ig = open_page()
    sign_in(ig, officer, home="Information governance")
    page = ig.page
    page.get_by_role("navigation", name="Menu").get_by_role(
        "link", name="Information governance").click()
    expect(page.get_by_role("heading", level=1, name="Access log")).to_be_visible()

    today = f"{timezone.localdate():%d/%m/%Y}"
    page.get_by_label("Case reference or person's name").fill(case.reference)
    page.get_by_label("From", exact=True).fill(today)
    page.get_by_label("To", exact=True).fill(today)
    page.get_by_role("button", name="Search").click()

    results = page.locator("#entries")
    expect(results.get_by_role("caption")).to_have_text("Matching entries, newest first")
    viewed = results.get_by_role("row").filter(has_text="Case viewed").filter(
        has_text=practitioner.username)
    expect(viewed).to_have_count(1)
    expect(viewed).to_contain_text(str(case.pk))
    # Only this case's entries: the officer's own search is not about a case.
    expect(results.get_by_role("row").filter(has_text="Access log searched")).to_have_count(0)
    assert AuditEvent.objects.filter(actor_id=officer.pk,
                                     action=AuditAction.AUDIT_SEARCHED).count() == 1

    # --- and downloads what it found -------------------------------------------------
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download these entries (CSV)").click()
    download = caught.value
    assert re.fullmatch(r"access-log-\d{8}-\d{4}\.csv", download.suggested_filename)
    content = open(download.path(), encoding="utf-8").read()
    assert practitioner.username in content and "Case viewed" in content
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:2] == ["When (UTC)", "User"]
    assert any(r[1] == practitioner.username and r[7] == "Case viewed" for r in rows[1:])
    assert all(r[11] == str(case.pk) for r in rows[1:])
    assert AuditEvent.objects.filter(actor_id=officer.pk,
                                     action=AuditAction.AUDIT_EXPORTED).count() == 1
    # Chromium reports a navigation that turns into a download as an aborted request:
    # that one, and nothing else, went wrong on the officer's tab.
    export_url = page.get_by_role("link", name="Download these entries (CSV)").get_attribute(
        "href")
    assert export_url.startswith("?") and export_url.endswith("&format=csv")
    assert ig.problems == [
        f"request failed: GET {live_site}/ig/{export_url} (net::ERR_ABORTED)"]
