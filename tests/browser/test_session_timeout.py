"""Typed text is not thrown away with the page, in a real browser.

- The idle sign-out warning (the page's clock is moved on; the server's is not, so the
  session itself stays): typing after the warning counts as activity, and when the
  time is up a page holding text typed and not sent is not reloaded (which would throw
  the text away) but says so and keeps it.
- A form of long text (a plan, an addendum, a reason) asks before the page is left
  with typed text not sent, and not when it is being sent.
"""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.pages import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

TYPED = "Plan: Kayleigh to attend the recovery group on Tuesdays (TYPED-3310)."


def _plan_page(open_page, world):
    """The family plan's edit page, signed in as the social worker, on a page clock."""
    tab = open_page()
    sign_in(tab, world.social_worker.get_username(), PASSWORD)
    page = tab.page
    page.clock.install()
    page.goto(reverse("casenotes:plan_edit", args=[world.case.pk]))
    page.evaluate("window.__sameDocument = true")
    return tab, page


def test_typing_after_the_warning_keeps_the_session_and_takes_the_warning_away(
        live_site, open_page, world):
    tab, page = _plan_page(open_page, world)
    warning = page.locator("#session-warning")
    page.clock.fast_forward("29:00")
    expect(warning).to_be_visible()
    page.locator("textarea").first.press_sequentially(TYPED[:20], delay=10)
    expect(warning).to_be_hidden()
    page.clock.fast_forward("29:00")  # 29 minutes from the typing: warned, not ended
    expect(warning).to_be_visible()
    assert page.evaluate("window.__sameDocument === true")
    assert tab.problems == [], tab.problems


def test_when_time_is_up_typed_text_is_kept_on_the_page_not_reloaded_away(
        live_site, open_page, world):
    tab, page = _plan_page(open_page, world)
    textarea = page.locator("textarea").first
    textarea.fill(TYPED)
    page.clock.fast_forward("31:00")
    warning = page.locator("#session-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("What you typed is still on this page")
    expect(warning.get_by_role("button", name="Stay signed in")).to_be_hidden()
    expect(textarea).to_have_value(TYPED)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert tab.problems == [], tab.problems


def test_when_time_is_up_a_page_with_nothing_typed_reloads(live_site, open_page, world):
    tab, page = _plan_page(open_page, world)
    with page.expect_navigation():
        page.clock.fast_forward("31:00")
    assert page.evaluate("window.__sameDocument === undefined")
    assert tab.problems == [], tab.problems


def test_leaving_a_plan_with_typed_text_asks_first_and_sending_it_does_not(
        live_site, open_page, world):
    tab, page = _plan_page(open_page, world)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    caseload = page.get_by_role("navigation", name="Menu").get_by_role("link", name="My caseload")
    caseload.click()  # nothing typed: no question
    expect(page.get_by_role("heading", level=1, name="My caseload")).to_be_visible()
    assert dialogs == []

    page.goto(reverse("casenotes:plan_edit", args=[world.case.pk]))
    textarea = page.get_by_label("What needs to happen")
    textarea.press_sequentially(" Weekly visits (PLAN-7781).", delay=5)
    caseload.click()
    for _ in range(50):
        if dialogs:
            break
        page.wait_for_timeout(100)
    assert dialogs == ["beforeunload"]  # asked; staying keeps the text
    expect(textarea).to_have_value(re.compile(r"PLAN-7781"))

    page.get_by_role("button", name="Save the plan").click()
    expect(page.get_by_text("PLAN-7781")).to_be_visible()
    assert dialogs == ["beforeunload"]  # sending the form asked nothing
