"""A social worker records a note in a real browser; a probation officer on the same
team sees agency-restricted notes of other agencies only as placeholders.

Data comes from the demo seed (`manage.py seed_demo`), the same data `make run` shows:
the Ashworth family (FS-24-0117) on the Northfield Family Safeguarding Team, with the
social worker `social.worker` (Children's Services) and the probation officer
`probation` (Probation), both signed in with the seed's published demo password.
"""

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.utils import dateformat, timezone

from casenotes.management.commands.seed_demo import DEMO_PASSWORD
from casenotes.models import CaseNote
from tests.browser.pages import sign_in

pytestmark = pytest.mark.browser

SOCIAL_WORKER = "social.worker"
PROBATION_OFFICER = "probation"
FAMILY = "Ashworth family"
CASE_REFERENCE = "FS-24-0117"
# A mental-health practitioner's agency-restricted note in the seed.
SEEDED_RESTRICTED_BODY = "Kerry attended clinic"


@pytest.fixture
def demo_data(settings):
    """Run the demo seed (it refuses unless DEBUG is on), then serve with DEBUG off."""
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    settings.DEBUG = False
    printed = out.getvalue()
    # The logins `make run` prints are the ones this test signs in with.
    assert DEMO_PASSWORD in printed
    assert SOCIAL_WORKER in printed and PROBATION_OFFICER in printed
    return printed


def open_case(tab):
    """From the caseload table, open the Ashworth case; return the case page's response."""
    page = tab.page
    page.goto("/")
    table = page.locator("#caseload")  # (above it, any drafts of the worker's own)
    row = table.locator("tbody tr", has_text=CASE_REFERENCE)
    assert row.count() == 1, page.content()
    with page.expect_navigation() as navigation:
        row.get_by_role("link", name=FAMILY).click()
    page.get_by_role("heading", level=1, name=FAMILY).wait_for()
    return navigation.value


def note_entries(page):
    return page.locator("#notes > article, #notes > p.app-placeholder")


def day_label(moment: datetime.datetime) -> str:
    """A note's date as placeholders show it (Django's "j M Y", local time)."""
    return dateformat.format(timezone.localtime(moment), "j M Y")


def test_social_worker_records_a_note_and_probation_sees_only_a_placeholder(
    demo_data, open_page
):
    # --- the social worker records an agency-restricted, significant home visit ----------
    worker = open_page()
    sign_in(worker, SOCIAL_WORKER)
    page = worker.page
    page.get_by_role("heading", level=1, name="My caseload").wait_for()
    assert page.locator("#caseload tbody tr").count() >= 1

    response = open_case(worker)
    headers = response.all_headers()
    assert "no-store" in headers.get("cache-control", "")
    csp = headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp

    page.get_by_role("link", name="Add a note").click()
    page.get_by_role("heading", level=1, name="Add a note").wait_for()

    occurred = timezone.localtime().replace(second=0, microsecond=0) - datetime.timedelta(
        minutes=5
    )
    body = (
        "Browser test home visit. Mia showed her new school reading book; "
        f"Kerry reported a housing worry. Ref {occurred:%H%M%S}."
    )
    page.get_by_label("Type of note").select_option(label="Home visit")
    page.get_by_label("Day", exact=True).fill(str(occurred.day))
    page.get_by_label("Month", exact=True).fill(str(occurred.month))
    page.get_by_label("Year", exact=True).fill(str(occurred.year))
    page.get_by_label("Time", exact=True).fill(f"{occurred:%H:%M}")
    page.get_by_label("Note", exact=True).fill(body)
    page.get_by_role("checkbox", name="Mia Ashworth").check()
    page.get_by_role("checkbox", name="Kerry Ashworth").check()
    page.get_by_role("radio", name="Agency-restricted").check()
    page.get_by_label("This is a significant event").check()
    page.get_by_role("button", name="Save as draft").wait_for()
    page.get_by_role("button", name="Finalise note").click()

    page.get_by_text("Note finalised.").wait_for()
    note = CaseNote.objects.get(body=body)
    assert note.is_final
    assert note.sensitivity == CaseNote.Sensitivity.AGENCY_RESTRICTED
    assert note.is_significant
    assert note.author.username == SOCIAL_WORKER
    assert sorted(p.full_name for p in note.people.all()) == ["Kerry Ashworth", "Mia Ashworth"]

    # The new note is on the case page, newest first.
    open_case(worker)
    newest = note_entries(page).first
    assert newest.get_attribute("id") == f"note-{note.pk}"
    assert body in newest.inner_text()
    assert "Significant event" in newest.inner_text()
    assert worker.problems == []

    # --- the probation officer, in another browser context ----------------------------
    probation = open_page()
    sign_in(probation, PROBATION_OFFICER)
    open_case(probation)
    ppage = probation.page
    notes_text = ppage.locator("#notes").inner_text()
    page_text = ppage.content()

    # Another agency's restricted note: agency and date only, no body.
    placeholder = ppage.locator(f"#note-{note.pk}")
    assert placeholder.inner_text().strip() == (
        f"Restricted note — Children's Services, {day_label(note.occurred_at)}"
    )
    assert "Browser test home visit" not in page_text
    assert "housing worry" not in page_text

    # The seed's mental-health note is shown the same way.
    seeded = CaseNote.objects.get(body__startswith=SEEDED_RESTRICTED_BODY)
    assert ppage.locator(f"#note-{seeded.pk}").inner_text().strip() == (
        f"Restricted note — Mental health, {day_label(seeded.occurred_at)}"
    )
    assert SEEDED_RESTRICTED_BODY not in page_text

    # Their own agency's restricted note is readable in full; a sealed note they are not
    # named on, and someone else's draft, are not there at all.
    assert "Licence conditions reviewed with Dean" in notes_text
    assert "refuge place" not in page_text
    assert "Call with school about Mia" not in page_text
    # The new note is still the newest entry.
    assert note_entries(ppage).first.get_attribute("id") == f"note-{note.pk}"
    assert probation.problems == []


def test_a_double_click_on_add_addendum_adds_one_addendum(demo_data, open_page):
    """An addendum is part of the legal record and can never be removed: a second click
    while the first is being sent (GOV.UK's prevent-double-click, on every button that
    sends a form) must not add it twice."""
    tab = open_page()
    sign_in(tab, SOCIAL_WORKER, DEMO_PASSWORD)
    note = CaseNote.objects.filter(case__reference=CASE_REFERENCE, author__username=SOCIAL_WORKER,
                                   state=CaseNote.State.FINAL).order_by("pk").first()
    page = tab.page
    page.goto(f"/cases/{note.case_id}/notes/{note.pk}/")
    page.get_by_label("Addendum").fill("Correction: the visit was on the Tuesday (ONCE-5150).")
    before = note.addenda.count()
    sent = []  # the form's requests, held until both clicks are in (as a slow network does)
    page.route(re.compile(r"/addenda/$"), lambda route: sent.append(route))
    box = page.get_by_role("button", name="Add addendum").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(*centre)
    page.wait_for_timeout(300)  # a person's double click, while the first is on its way
    page.mouse.click(*centre)
    page.wait_for_timeout(300)
    assert len(sent) == 1, "the form was sent twice"
    sent[0].continue_()
    page.get_by_text("ONCE-5150").first.wait_for()
    assert note.addenda.count() == before + 1
    assert tab.problems == [], tab.problems
