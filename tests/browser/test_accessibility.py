"""Automated accessibility checks of the pages practitioners, team managers and
information-governance officers use every day, in a real browser served by Daphne.

Each page is opened as its users meet it: signed in, with data on it, its live
connection up where it has one, and in the states people see (a form showing its
errors, a draft changed elsewhere beside their own text). It is then checked with
axe-core against WCAG 2.2 level A and AA (`WCAG_TAGS`). A test opens all its pages
before it fails, and lists every violation of every page: the rule, its impact, what
it asks for and the first elements that break it.

axe-core is an npm devDependency (package.json), installed into node_modules/ by
`make deps` (`npm ci`); the static build never copies it, so it is never served. It is
read from node_modules/axe-core/axe.min.js and run in each page with `page.evaluate`,
which goes through the DevTools protocol: the page's Content-Security-Policy stays as
served. Without axe-core these tests skip with a reason, and CI
(WORKSPACE_STRICT_SKIPS=1) turns that skip into a failure.

Data comes from `tests.factories.build_world` (the `world` fixture): the Harper family's
case (FS-2025-0417) on the Family Safeguarding team, whose accounts share
`tests.factories.PASSWORD`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from casenotes.actions import (
    do_add_addendum,
    do_add_keyworker,
    do_create_case,
    do_open_break_glass,
    do_request_transfer,
    do_update_draft,
    do_update_person,
    do_update_plan,
)
from casenotes.models import Case, CaseNote, Person
from discussions import actions as discussion_actions
from discussions.models import Section
from teams.models import Role
from tests.browser.pages import sign_in
from tests.discussions.conftest import schedule
from tests.factories import PASSWORD
from tests.servers import ROOT
from tests.teams.test_two_factor import code_for

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: WCAG 2.0, 2.1 and 2.2 at levels A and AA, as axe-core tags its rules (no rule of its is
#: tagged wcag22a: 2.2's new level A criteria need a person to judge them).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
TARGETS_SHOWN = 5

RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
  });
  return results.violations.map((violation) => ({
    id: violation.id, impact: violation.impact, help: violation.help,
    url: violation.helpUrl, targets: violation.nodes.map((node) => node.target.flat().join(" ")),
  }));
}"""

# Two checks axe-core does not make, reported as its findings are. Ids are unique: axe no
# longer checks (WCAG 2.2 made 4.1.1 Parsing obsolete), but a label or ARIA reference to a
# repeated id names only the first element that has it (1.3.1, 4.1.2). And each link of
# an error summary leads to the field it is about (GOV.UK's error summary; 3.3.1).
OWN_CHECKS = """() => {
  const counts = new Map();
  for (const element of document.querySelectorAll("[id]")) {
    counts.set(element.id, (counts.get(element.id) || 0) + 1);
  }
  const repeated = [...counts].filter(([, count]) => count > 1);
  const unlinked = [...document.querySelectorAll(".govuk-error-summary a[href^='#']")]
    .filter((link) => !document.getElementById(decodeURIComponent(link.hash.slice(1))));
  const found = [];
  if (repeated.length) found.push({
    id: "duplicate-id", impact: "serious",
    help: "ids must be unique: a label or ARIA reference names only the first element",
    url: "https://www.w3.org/WAI/WCAG22/Understanding/info-and-relationships",
    targets: repeated.map(([id, count]) => `[id="${id}"] (${count} elements)`),
  });
  if (unlinked.length) found.push({
    id: "error-summary-link", impact: "serious",
    help: "each error summary link must lead to the field it is about",
    url: "https://design-system.service.gov.uk/components/error-summary/",
    targets: unlinked.map((link) => `a[href="${link.getAttribute("href")}"]`),
  });
  return found;
}"""

LIVE_WAIT_MS = 10_000
NOTE_BODY = "Ellie showed the worker her new reading book; the home was warm and tidy."
DRAFT_BODY = "Draft: Tom was asleep when the worker called; Kayleigh spoke about rent arrears."
EMERGENCY_REASON = "Police called about the children overnight."
CHROMIUM_ECHO = re.compile(r"^console error: Failed to load resource: the server responded "
                           r"with a status of (400|404|409)\b")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(f"accessibility checks need axe-core at {AXE.relative_to(ROOT)}: "
                    "run `make deps` (npm ci) to install the npm devDependencies")
    return AXE.read_text(encoding="utf-8")


@dataclass
class Checks:
    """The pages checked so far, and the violations found on each."""

    source: str
    checked: list[str] = field(default_factory=list)
    found: dict[str, list[dict]] = field(default_factory=dict)

    def check(self, tab, name: str) -> None:
        page = tab.page
        page.wait_for_load_state("load")
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(self.source)
        path = re.sub(r"^https?://[^/]+", "", page.url)
        label = f"{name} ({path})"
        self.checked.append(label)
        violations = page.evaluate(RUN_AXE, WCAG_TAGS) + page.evaluate(OWN_CHECKS)
        if violations:
            self.found[label] = violations

    def assert_none(self) -> None:
        assert self.checked
        if self.found:
            pytest.fail(self.report(), pytrace=False)

    def report(self) -> str:
        lines = [f"WCAG 2.2 A/AA violations on {len(self.found)} of the {len(self.checked)} "
                 "pages checked:"]
        for label, violations in self.found.items():
            lines.append(f"- {label}")
            for v in violations:
                lines.append(f"    {v['id']} [{v['impact']}] {v['help']} "
                             f"({len(v['targets'])} element(s); {v['url']})")
                lines.extend(f"        {target}" for target in v["targets"][:TARGETS_SHOWN])
        return "\n".join(lines)


@pytest.fixture
def axe(axe_source) -> Checks:
    return Checks(axe_source)


def signed_in(open_page, user, home: str = "My caseload"):
    tab = open_page()
    sign_in(tab, user.get_username(), PASSWORD)
    expect(tab.page.get_by_role("heading", level=1, name=home)).to_be_visible()
    return tab


def visit(tab, url: str, heading: str | re.Pattern, *, status: int = 200, live: bool = False):
    """Open `url`, check the answer's status and its heading; with `live`, wait until
    the page's live connection is up."""
    page = tab.page
    response = page.goto(url)
    assert response.status == status, (url, response.status)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    if live:
        expect_live(page)
    return response


def expect_live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live",
                                                           timeout=LIVE_WAIT_MS)


def unexpected_problems(tab, refused: list[str]) -> list[str]:
    """What went wrong on a tab, less the answers a check asked for: an error status of
    a page whose path starts with one in `refused`, and Chromium's console echo of it."""
    return [
        problem for problem in tab.problems
        if not CHROMIUM_ECHO.match(problem)
        and not any(re.fullmatch(rf"HTTP 4\d\d: (GET|POST) https?://[^/]+{re.escape(path)}\S*",
                                 problem) for path in refused)
    ]


def case_url(case: Case, name: str = "case_detail", *args) -> str:
    return reverse(f"casenotes:{name}", args=[case.pk, *args])


def signed_off_discussion(world):
    """A signed-off discussion of the Harper case with one action for the social worker:
    it files its record into the case as a note, and puts the action on their list."""
    discussion = discussion_actions.do_start_discussion(acting_user=world.team_manager,
                                                        discussion=schedule(world))
    item = discussion.items.get()
    decision = Section.objects.get(item=item, kind=Section.Kind.DECISION)
    discussion_actions.do_save_section(acting_user=world.team_manager, section=decision,
                                       text="Continue the child protection plan.", version=1)
    discussion_actions.do_add_action(
        acting_user=world.team_manager, item=item, owner=world.social_worker,
        description="Book a family group conference",
        due_on=timezone.localdate() + datetime.timedelta(days=7))
    discussion_actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)


def case_full_of_notes(world):
    """Notes of every kind the social worker meets on the case page: a standard one
    (significant, with an addendum), another agency's restricted note (a placeholder),
    their own agency's restricted note, a sealed note they wrote, and their draft."""
    worker = world.social_worker
    note = world.standard_note(worker, body=NOTE_BODY, is_significant=True,
                               people=[world.people["ellie"], world.people["tom"]])
    do_add_addendum(acting_user=worker, note=note,
                    body="Addendum: the school confirmed Ellie's attendance is 96%.")
    world.restricted_note(world.user(Role.MENTAL_HEALTH_PRACTITIONER),
                          people=[world.people["kayleigh"]])
    world.restricted_note(world.user(Role.FAMILY_SUPPORT_WORKER),
                          note_type=CaseNote.NoteType.PHONE_CALL)
    sealed = world.sealed_note(worker, readers=[world.team_manager],
                               body="Kayleigh's new address: see the refuge's letter.")
    draft = world.draft(worker, body=DRAFT_BODY)
    return note, sealed, draft


def save_draft_elsewhere(world, draft: CaseNote, body: str) -> CaseNote:
    draft.refresh_from_db()
    return do_update_draft(
        acting_user=world.social_worker, note=draft, expected_version=draft.version,
        note_type=draft.note_type, occurred_at=draft.occurred_at, body=body,
        sensitivity=draft.sensitivity)


# --- a practitioner's day ----------------------------------------------------------------

def test_a_practitioners_pages_meet_wcag_2_2_aa(world, open_page, axe):
    case, worker = world.case, world.social_worker
    note, sealed, draft = case_full_of_notes(world)
    signed_off_discussion(world)

    # --- signing in ------------------------------------------------------------------
    tab = open_page()
    page = tab.page
    visit(tab, reverse("login"), "Sign in")
    axe.check(tab, "sign-in page")
    page.get_by_label("Username").fill(worker.get_username())
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a correct username and password")
    axe.check(tab, "sign-in page refusing a wrong password")
    sign_in(tab, worker.get_username(), PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("My caseload")
    axe.check(tab, "caseload")

    # --- the case, live, with notes of every kind ------------------------------------
    visit(tab, case_url(case), "Harper family", live=True)
    expect(page.locator("#presence")).to_be_visible()
    for shown in (note, sealed, draft):
        expect(page.locator(f"#note-{shown.pk}")).to_be_visible()
    expect(page.locator("#notes > p.app-placeholder")).to_have_count(1)
    expect(page.locator("#case-actions")).to_be_visible()
    axe.check(tab, "case page")
    tab.context.set_offline(True)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    axe.check(tab, "case page, offline")
    tab.context.set_offline(False)
    expect_live(page)
    # A colleague writing a note: the "is writing" line, in its colours.
    colleague = open_page()
    sign_in(colleague, world.user(Role.PROBATION_OFFICER).get_username(), PASSWORD)
    visit(colleague, case_url(case, "note_create"), "Add a note", live=True)
    colleague.page.get_by_label("Note", exact=True).press_sequentially("Spoke to", delay=20)
    expect(page.locator("#writing")).to_contain_text("is writing a note")
    axe.check(tab, "case page showing a colleague writing")
    colleague.page.close()

    visit(tab, case_url(case, "note_create"), "Add a note", live=True)
    axe.check(tab, "new-note form")
    page.get_by_role("button", name="Finalise note").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a note")
    expect_live(page)
    axe.check(tab, "new-note form showing its errors")

    visit(tab, case_url(case, "note_detail", note.pk), "Home visit")
    expect(page.get_by_text("the school confirmed Ellie's attendance")).to_be_visible()
    axe.check(tab, "note with an addendum")
    visit(tab, case_url(case, "note_history", note.pk), "History of this note")
    axe.check(tab, "note history")
    visit(tab, case_url(case, "note_readers", sealed.pk), "Who may read this sealed note")
    axe.check(tab, "sealed note's readers")
    visit(tab, case_url(case, "case_history"), "History of this case record")
    axe.check(tab, "case history")
    visit(tab, case_url(case, "chronology") + f"?person={world.people['tom'].pk}",
          "Chronology about Tom Harper")
    expect(page.locator(f"#chronology-note-{note.pk}")).to_be_visible()
    axe.check(tab, "chronology about one child")
    visit(tab, case_url(case, "chronology") + "?person=x", "Chronology", status=400)
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(tab, "chronology refusing a person not in the family")
    visit(tab, case_url(case, "person_specialist", world.people["kayleigh"].pk),
          "Specialist agency for Kayleigh Harper")
    axe.check(tab, "an adult's specialist agency")
    visit(tab, case_url(case, "person_add"), "Add a person to the family")
    axe.check(tab, "adding a person to the family")
    page.get_by_role("button", name="Add to the family").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a person to the family")
    axe.check(tab, "adding a person, showing its errors")
    dean = world.people["dean"]
    visit(tab, case_url(case, "person_edit", dean.pk), "Change the details of Dean Walsh")
    axe.check(tab, "a person's details")
    dean.refresh_from_db()
    do_update_person(acting_user=world.team_manager, person=dean, based_on=dean.details_version,
                     full_name="Dean Walsh", role_in_family=Person.RoleInFamily.STEP_PARENT,
                     date_of_birth=dean.date_of_birth)
    page.get_by_label("Full name").fill("Dean Walshe")
    page.get_by_role("button", name="Save the details").click()
    expect(page.locator("#saved-now")).to_contain_text("Step-parent")
    axe.check(tab, "a person's details changed elsewhere, both versions shown")

    # --- the family's plan: empty, its form with errors, changed elsewhere, written -----
    visit(tab, case_url(case, "plan_detail"), "Family plan")
    axe.check(tab, "family plan not yet written")
    visit(tab, case_url(case, "plan_edit"), "Write the family plan")
    page.get_by_label("What we are worried about").fill("Dean's drinking at weekends.")

    def review_date(day: str, month: str, year: str) -> None:
        for part, value in (("day", day), ("month", month), ("year", year)):
            page.locator(f"#id_review_{part}").fill(value)

    review_date("31", "2", "2027")
    page.get_by_role("button", name="Save the plan").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a real review date")
    axe.check(tab, "family plan form showing its errors")
    do_update_plan(acting_user=world.team_manager, case=case, based_on=0,
                   sections={"worries": "Weekly visits missed."}, review_on=None)
    review_date("", "", "")
    page.get_by_role("button", name="Save the plan").click()
    expect(page.locator("#saved-now")).to_contain_text("Weekly visits missed.")
    axe.check(tab, "family plan changed elsewhere, both texts shown")
    page.get_by_role("button", name="Save the plan").click()
    expect(page.locator("#plan")).to_contain_text("Dean's drinking at weekends.")
    axe.check(tab, "family plan")
    # The group case discussion's record, added to the form for the team to check.
    page.get_by_role("link", name="Change the plan").click()
    page.get_by_label("If things do not get better").fill("A child protection conference.")
    page.get_by_role("button", name=re.compile("^Add the record of the")).click()
    expect(page.locator("#record-added")).to_contain_text("What needs to happen")
    expect(page.get_by_label("What needs to happen")).to_have_value(
        re.compile("Decision: Continue the child protection plan.\n- Book a family group"))
    expect(page.get_by_label("If things do not get better")).to_have_value(
        "A child protection conference.")
    axe.check(tab, "family plan form with a discussion's record added")
    # Enter in a field saves the plan (the first button), never adds the record again.
    page.locator("#id_review_year").press("Enter")
    expect(page.locator("#plan")).to_contain_text("Book a family group conference")

    # --- a draft, and the same draft changed elsewhere --------------------------------
    edit_url = case_url(case, "note_edit", draft.pk)
    visit(tab, edit_url, "Edit draft note", live=True)
    axe.check(tab, "draft note form")
    save_draft_elsewhere(world, draft, DRAFT_BODY + " Saved from another device.")
    page.get_by_label("Note", exact=True).press_sequentially(" Dean was not at home.", delay=10)
    panel = page.locator("#autosave-conflict")
    expect(panel).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(panel.locator("#autosave-conflict-body")).to_contain_text("Saved from another device.")
    axe.check(tab, "draft changed elsewhere, both texts side by side")

    posted = open_page(beside=tab)  # the form sent after the draft moved on: answered 409
    visit(posted, edit_url, "Edit draft note", live=True)
    save_draft_elsewhere(world, draft, DRAFT_BODY + " Saved from a third device.")
    posted.page.get_by_role("button", name="Save as draft").click()
    expect(posted.page.locator("#saved-version")).to_contain_text("Saved from a third device.")
    axe.check(posted, "draft form answering a save of an older version")

    # --- finding things, and the lists around the case -------------------------------
    visit(tab, reverse("casenotes:search") + "?q=Harper", "Search for a case or person")
    expect(page.get_by_role("main")).to_contain_text("Ellie Harper")
    axe.check(tab, "search with results")
    visit(tab, reverse("discussions:my_actions"), "My actions")
    expect(page.get_by_role("main")).to_contain_text("Book a family group conference")
    axe.check(tab, "my actions")
    page.get_by_label("What was done (optional)").fill("Booked. " * 70)  # over 500 characters
    page.get_by_role("button", name=re.compile("^Mark as done")).click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(tab, "my actions showing an error")
    visit(tab, reverse("teams:team_detail", args=[world.fs_team.pk]), world.fs_team.name)
    axe.check(tab, "team page")
    visit(tab, "/cases/999999/", "Page not found", status=404)
    axe.check(tab, "page not found")

    # --- their account ---------------------------------------------------------------
    visit(tab, reverse("password_change"), "Change your password")
    axe.check(tab, "password change")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(tab, "password change showing its errors")
    visit(tab, reverse("two_factor_setup"), "Set up two-factor sign-in")
    axe.check(tab, "two-factor set-up")
    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(tab, "two-factor set-up refusing a wrong code")
    device = TOTPDevice.objects.filter(user=worker, confirmed=False).latest("pk")
    page.get_by_label("Code from the app").fill(code_for(device))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator(".app-backup-codes")).to_be_visible()
    axe.check(tab, "two-factor backup codes")

    second = signed_in(open_page, worker)  # a new session: asked for the second step
    visit(second, reverse("two_factor_verify"), "Enter your security code")
    axe.check(second, "two-factor code")
    # The idle sign-out warning, a few minutes before the session ends: the page's clock
    # is moved on (the server's is not, so the session stays).
    second.page.clock.install()
    visit(second, reverse("casenotes:caseload"), "My caseload")
    second.page.clock.fast_forward("29:00")
    expect(second.page.locator("#session-warning")).to_be_visible()
    axe.check(second, "caseload, warning of the idle sign-out")

    assert unexpected_problems(tab, [reverse("login"), case_url(case, "note_create"),
                                     "/cases/999999/", case_url(case, "chronology"),
                                     case_url(case, "person_add"),
                                     case_url(case, "person_edit", world.people["dean"].pk),
                                     case_url(case, "plan_edit"),
                                     reverse("discussions:my_actions"),
                                     reverse("password_change"),
                                     reverse("two_factor_setup")]) == []
    assert unexpected_problems(posted, [edit_url]) == []
    assert unexpected_problems(second, []) == []
    axe.assert_none()


# --- a team manager's pages, transfers and emergency access -------------------------------

@pytest.mark.server_env(CASE_NOTES_PER_PAGE=2)
def test_a_case_record_in_pages_meets_wcag_2_2_aa(world, open_page, axe):
    case_full_of_notes(world)
    tab = signed_in(open_page, world.social_worker)
    visit(tab, f"{case_url(world.case)}?page=2", "Harper family", live=True)
    expect(tab.page.locator(".govuk-pagination")).to_be_visible()
    expect(tab.page.locator("#notes-count")).to_contain_text("Showing notes 3 to 4 of")
    axe.check(tab, "case page, second page of notes")
    axe.assert_none()
    assert tab.problems == [], tab.problems


def test_case_access_transfer_and_emergency_access_pages_meet_wcag_2_2_aa(world, open_page, axe):
    case = world.case
    outsider = world.locality_users[Role.SOCIAL_WORKER]
    keyworker = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    emergency_url = case_url(case, "break_glass")

    # --- someone off the case opens it in an emergency -------------------------------
    opener = signed_in(open_page, outsider)
    visit(opener, emergency_url, f"Emergency access to {case.reference}")
    axe.check(opener, "emergency access form")
    opener.page.get_by_role("button", name="Open the case in an emergency").click()
    expect(opener.page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(opener, "emergency access form showing its errors")
    opener.page.get_by_role("radio").first.check()
    opener.page.get_by_label("Details").fill(EMERGENCY_REASON)
    opener.page.get_by_role("button", name="Open the case in an emergency").click()
    expect(opener.page.locator("#break-glass-banner")).to_be_visible()
    expect_live(opener.page)
    axe.check(opener, "case page under emergency access")

    # --- the team manager: who has access, and a transfer -----------------------------
    do_add_keyworker(acting_user=world.team_manager, case=case, user=keyworker)
    manager = signed_in(open_page, world.team_manager)
    visit(manager, case_url(case, "case_access"), "Who has access")
    expect(manager.page.get_by_role("main")).to_contain_text(outsider.get_full_name())
    axe.check(manager, "who has access")
    visit(manager, case_url(case, "transfer_request"), "Request a transfer")
    axe.check(manager, "transfer request form")
    manager.page.get_by_role("button", name="Send request").click()
    expect(manager.page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(manager, "transfer request form showing its errors")
    visit(manager, case_url(case, "case_manage"), "Manage the case")
    axe.check(manager, "case management page")
    manager.page.get_by_role("button", name="Close the case").click()
    expect(manager.page.locator(".govuk-error-summary")).to_contain_text("Confirm that the case")
    axe.check(manager, "case management page refusing an unconfirmed close")
    visit(manager, reverse("casenotes:case_create", args=[world.fs_team.pk]), "Open a new case")
    axe.check(manager, "new case form")
    visit(manager, reverse("discussions:schedule", args=[world.fs_team.pk]),
          "Schedule a group case discussion")
    axe.check(manager, "group case discussion scheduling form")
    scheduled = schedule(world)
    visit(manager, reverse("discussions:agenda_add", args=[scheduled.pk]), "Add a case to the agenda")
    axe.check(manager, "adding a case to a scheduled discussion's agenda")

    transfer = do_request_transfer(acting_user=world.team_manager, case=case,
                                   to_team=world.locality_team,
                                   reason="Risk has fallen since the plan began.")
    receiver = signed_in(open_page, locality_manager)
    visit(receiver, reverse("casenotes:transfer_list"), "Transfer requests")
    axe.check(receiver, "transfer requests")
    visit(receiver, reverse("casenotes:transfer_decide", args=[transfer.pk]),
          f"Transfer of the Harper family to {world.locality_team.name}")
    axe.check(receiver, "transfer decision form")
    receiver.page.get_by_role("button", name="Send decision").click()
    expect(receiver.page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(receiver, "transfer decision form showing its errors")

    decide_url = reverse("casenotes:transfer_decide", args=[transfer.pk])
    assert unexpected_problems(opener, [emergency_url]) == []
    assert unexpected_problems(manager, [case_url(case, "transfer_request"),
                                         case_url(case, "case_manage")]) == []
    assert unexpected_problems(receiver, [decide_url]) == []
    axe.assert_none()


# --- a group case discussion, running ------------------------------------------------------

def test_a_running_group_case_discussion_meets_wcag_2_2_aa(world, open_page, axe):
    manager, worker = world.team_manager, world.social_worker
    second_case = do_create_case(
        acting_user=manager, reference="FS-2025-0418", family_name="Nowak",
        category=Case.Category.CHILD_IN_NEED, team=world.fs_team, lead_practitioner=worker,
        opened_on=timezone.localdate() - datetime.timedelta(days=20))
    discussion = schedule(world, cases=[world.case, second_case])
    discussion = discussion_actions.do_start_discussion(acting_user=manager, discussion=discussion)
    first_item = discussion.items.get(case=world.case)
    worries = Section.objects.get(item=first_item, kind=Section.Kind.WORRIES)
    discussion_actions.do_save_section(acting_user=worker, section=worries,
                                       text="Rent arrears; the landlord has written.", version=1)
    # Two people changed the same words at once: one text is kept beside the section.
    discussion_actions.do_save_section(acting_user=manager, section=worries,
                                       text="Something else entirely.", version=1, base_text="")
    discussion_actions.do_add_action(
        acting_user=manager, item=first_item, owner=worker,
        description="Book a family group conference",
        due_on=timezone.localdate() + datetime.timedelta(days=7))
    room_url = reverse("discussions:room", args=[discussion.pk])

    chair = signed_in(open_page, manager)
    visit(chair, room_url, re.compile(discussion.title), live=True)
    expect(chair.page.locator(".app-kept")).to_have_count(1)
    expect(chair.page.locator("#presence")).to_be_visible()
    axe.check(chair, "group case discussion, as its chair")

    participant = signed_in(open_page, worker)
    expect(participant.page.locator(f"#running-{discussion.pk}")).to_contain_text(
        "Join the discussion")
    axe.check(participant, "caseload, with a discussion running")
    visit(participant, room_url, re.compile(discussion.title), live=True)
    expect(participant.page.locator("#presence [data-presence-list] > li")).to_have_count(2)
    axe.check(participant, "group case discussion, as a participant")
    participant.page.get_by_role("button", name="Add action").first.click()
    expect(participant.page.locator("#discussion-errors")).to_be_visible()
    expect_live(participant.page)
    axe.check(participant, "group case discussion, refusing an action with nothing filled in")
    visit(participant, reverse("discussions:history", args=[discussion.pk]),
          "Every version of the record")
    axe.check(participant, "group case discussion record's history")

    assert unexpected_problems(chair, []) == []
    assert unexpected_problems(participant, [f"/discussions/{discussion.pk}/items/"]) == []
    axe.assert_none()


# --- information governance ----------------------------------------------------------------

def test_information_governance_pages_meet_wcag_2_2_aa(world, open_page, axe):
    case, worker = world.case, world.social_worker
    case_full_of_notes(world)
    reader = Client()
    reader.force_login(worker)
    assert reader.get(case_url(case)).status_code == 200  # the read the log then shows
    grant = do_open_break_glass(acting_user=world.locality_users[Role.SOCIAL_WORKER], case=case,
                                reason_code="other", reason=EMERGENCY_REASON)
    ig = signed_in(open_page, world.user(Role.IG_OFFICER), home="Information governance")
    expect(ig.page.locator("#awaiting-review")).to_contain_text("waiting for your review")
    axe.check(ig, "information governance start page")
    page = ig.page
    today = f"{timezone.localdate():%d/%m/%Y}"
    visit(ig, reverse("audit:log_search"), "Access log")
    axe.check(ig, "access log")
    page.get_by_label("Case reference or person's name").fill(case.reference)
    page.get_by_label("From", exact=True).fill(today)
    page.get_by_label("To", exact=True).fill(today)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#entries").get_by_role("row").filter(has_text="Case viewed")
           ).not_to_have_count(0)
    axe.check(ig, "access log search with results")
    page.get_by_label("From", exact=True).fill("31/02/2026")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(ig, "access log search showing its errors")

    visit(ig, reverse("audit:alerts"), re.compile("^Access alerts"))
    axe.check(ig, "alerts")
    visit(ig, reverse("audit:break_glass_queue"), "Emergency access review")
    axe.check(ig, "emergency access review list")
    visit(ig, reverse("audit:break_glass_review", args=[grant.pk]),
          f"Emergency access by {grant.user.get_full_name()}")
    axe.check(ig, "emergency access review")
    visit(ig, reverse("audit:case_report", args=[case.pk]), f"Who accessed {case.reference}")
    axe.check(ig, "case access report")
    visit(ig, reverse("audit:user_report", args=[worker.pk]), f"What {worker.get_full_name()} accessed")
    axe.check(ig, "user access report")

    visit(ig, reverse("audit:subject_access") + "?q=" + "Harper" * 17, "Subject access request",
          status=400)
    expect(page.locator(".govuk-error-summary")).to_contain_text("100 characters or fewer")
    axe.check(ig, "subject access search showing its error")
    visit(ig, reverse("audit:subject_access") + "?q=Harper", "Subject access request")
    axe.check(ig, "subject access request: people found")
    page.get_by_role("button", name="Produce the subject access request").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    axe.check(ig, "subject access request showing its errors")
    page.get_by_label(re.compile("^Ellie Harper")).check()
    page.get_by_label("Reference").fill("SAR-2026-0917")
    page.get_by_role("radio", name="Printable page").check()
    page.get_by_role("button", name="Produce the subject access request").click()
    expect(page.get_by_role("main")).to_contain_text(NOTE_BODY)
    axe.check(ig, "subject access request report")

    assert unexpected_problems(ig, [reverse("audit:log_search"),
                                    reverse("audit:subject_access")]) == []
    axe.assert_none()


NARROW = {"width": 320, "height": 720}


def test_pages_reflow_at_320_pixels_with_each_stacked_cell_labelled(world, open_page):
    """WCAG 2.2 reflow (1.4.10): at 320 CSS pixels no page scrolls sideways. Tables
    become stacks of cells, each labelled with its column's heading."""
    case, worker, manager = world.case, world.social_worker, world.team_manager
    note, _sealed, _draft = case_full_of_notes(world)
    do_open_break_glass(acting_user=world.locality_users[Role.SOCIAL_WORKER], case=case,
                        reason_code="other", reason=EMERGENCY_REASON)
    journeys = [
        (worker, "My caseload", [
            (reverse("casenotes:caseload"), "My caseload"),
            (case_url(case), "Harper family"),
            (case_url(case, "chronology"), "Chronology"),
            (case_url(case, "note_detail", note.pk), "Home visit"),
            (case_url(case, "case_history"), "History of this case record"),
            (reverse("teams:team_detail", args=[world.fs_team.pk]), world.fs_team.name),
        ]),
        (manager, "My caseload", [
            (case_url(case, "case_access"), re.compile("access", re.I)),
        ]),
        (world.user(Role.IG_OFFICER), "Information governance", [
            (reverse("audit:log_search") + f"?q={case.reference}", "Access log"),
            (reverse("audit:break_glass_queue"), "Emergency access review"),
            (reverse("audit:case_report", args=[case.pk]), re.compile(case.reference)),
        ]),
    ]
    wide = []
    for user, home, pages in journeys:
        tab = signed_in(open_page, user, home=home)
        tab.page.set_viewport_size(NARROW)
        for url, heading in pages:
            visit(tab, url, heading)
            sideways = tab.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if sideways > 0:
                wide.append(f"{url} scrolls {sideways}px sideways")
        if user == worker:
            visit(tab, reverse("casenotes:caseload"), "My caseload")
            family = tab.page.locator("td[data-label='Family']").first
            expect(family).to_contain_text("Harper family")
            label = family.evaluate("cell => getComputedStyle(cell, '::before').content")
            assert label == '"Family: "', label
    assert wide == []
