"""A group case discussion in a real browser, served by Daphne: three participants of
the Northfield Family Safeguarding Team in three browser contexts at once.

Data comes from the demo seed: the team's scheduled "Weekly group case discussion"
with its open cases on the agenda (1. Ashworth FS-24-0117, 2. Begum FS-24-0142) and
the whole team invited. The team manager (Tara Okafor) chairs it; the social worker
(Sam Patel, Children's Services) and the probation officer (Priya Shah, Probation)
take part.

- The manager starts it from the team page; everyone in the room sees who is there and
  that the page is live (a page opened before the start reloads itself into the
  running discussion).
- Two people typing into different sections at once both end up saved, each seeing the
  other's words arrive without a reload.
- Two people typing into the same section at once lose nothing: what could not be
  merged is kept beside the section, on every page and in the database.
- The manager records the decisions, moves the meeting on (everyone's page follows)
  and signs off: the record is filed into the case as a note that arrives live on the
  case page, and everyone else's record becomes read-only.

Then what a failing network does to one participant's typing (the page's socket passes
through the test, which can hold a save, lose a message with the connection, or leave
the page without a connection): nothing typed is lost, and the page says why.
"""

import io
import json
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from casenotes.actions import do_create_case
from casenotes.models import Case, CaseNote
from discussions.actions import do_add_agenda_case, do_save_section, do_start_discussion
from discussions.models import AgendaItem, Discussion, KeptText, Section
from tests.browser.pages import sign_in

pytestmark = pytest.mark.browser

MANAGER = "team.manager"  # Tara Okafor, team manager, Children's Services
SOCIAL_WORKER = "social.worker"  # Sam Patel, social worker, Children's Services
PROBATION_OFFICER = "probation"  # Priya Shah, probation officer, Probation
NAMES = {MANAGER: "Tara Okafor", SOCIAL_WORKER: "Sam Patel", PROBATION_OFFICER: "Priya Shah"}
TITLE = "Weekly group case discussion"
FIRST_CASE, FIRST_FAMILY = "FS-24-0117", "Ashworth family"
SECOND_CASE, SECOND_FAMILY = "FS-24-0142", "Begum family"
UNREACHED_CASE = "FS-26-0999"
LIVE_WAIT_MS = 5_000  # "within a few seconds"
SETTLE_MS = 10_000  # debounced autosave (0.7 s), the answer, and a possible second save

WORRIES = "What are we worried about?"
WORKING_WELL = "What is working well?"
NEEDS = "What needs to happen?"
DECISION = "Decision"


@pytest.fixture
def demo_data(settings):
    """Run the demo seed (it refuses unless DEBUG is on), then serve with DEBUG off."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEBUG = False


# --- pages ---------------------------------------------------------------------------

def discussion() -> Discussion:
    return Discussion.objects.get(title=TITLE)


def agenda_item(reference: str) -> AgendaItem:
    return AgendaItem.objects.get(discussion=discussion(), case__reference=reference)


def section(reference: str, label: str) -> Section:
    kind = next(value for value, display in Section.Kind.choices if display == label)
    return Section.objects.get(item=agenda_item(reference), kind=kind)


def open_room_from_team_page(tab) -> None:
    """The team page lists the discussion; follow its link into the room."""
    page = tab.page
    page.goto(f"/teams/{discussion().team_id}/")
    listed = page.locator("#team-discussions li", has_text=TITLE)
    expect(listed).to_have_count(1)
    with page.expect_navigation():
        listed.get_by_role("link", name=re.compile(f"^{TITLE},")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)


def textarea(page, reference: str, label: str):
    item = agenda_item(reference)
    return page.locator(f"#item-{item.pk}").get_by_role("textbox", name=label, exact=True)


def section_block(page, reference: str, label: str):
    return page.locator(f"#section-{section(reference, label).pk}")


def expect_live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#live-status [data-live-title]")).to_have_text("Live")


def mark_document(page) -> None:
    """A marker that only survives as long as the page is not reloaded."""
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def type_at_once(*typing) -> None:
    """Several people type at the same time: (locator, words) each, a word at a time in
    turn, so nobody pauses long enough (0.7 s) for their autosave to fire before everyone
    has finished. Keys, not fill(), so the page sees real input events."""
    for locator, _words in typing:
        locator.focus()
    longest = max(len(words) for _locator, words in typing)
    for index in range(longest):
        for locator, words in typing:
            if index < len(words):
                text = words[index] if index == len(words) - 1 else words[index] + " "
                locator.press_sequentially(text, delay=15)


def expect_saved(page, reference: str, label: str) -> None:
    expect(section_block(page, reference, label).locator("[data-section-status]")).to_contain_text(
        "Saved at", timeout=SETTLE_MS)


# --- the test ------------------------------------------------------------------------

def _third_case_on_the_agenda() -> AgendaItem:
    """A third family of the team, added to the agenda: the meeting will not reach it."""
    manager = get_user_model().objects.get(username=MANAGER)
    existing = Case.objects.get(reference=FIRST_CASE)
    case = do_create_case(acting_user=manager, reference=UNREACHED_CASE, family_name="Dlamini",
                          category=Case.Category.CHILD_IN_NEED, team=existing.allocated_team)
    do_add_agenda_case(acting_user=manager, discussion=discussion(), case=case)
    return agenda_item(UNREACHED_CASE)


def test_three_people_run_a_group_case_discussion_and_file_its_record(demo_data, open_page):
    first, second = agenda_item(FIRST_CASE), agenda_item(SECOND_CASE)
    assert (first.position, second.position) == (1, 2)
    assert discussion().status == Discussion.Status.SCHEDULED
    unreached = _third_case_on_the_agenda()

    manager, worker, probation = open_page(), open_page(), open_page()
    sign_in(manager, MANAGER)
    sign_in(worker, SOCIAL_WORKER)
    sign_in(probation, PROBATION_OFFICER)
    mpage, wpage, ppage = manager.page, worker.page, probation.page

    # --- 1. the manager starts the discussion; everyone is in the room, live ------------
    open_room_from_team_page(manager)
    expect(mpage.locator("#discussion-status")).to_have_text("Scheduled")
    expect_live(mpage)
    # The probation officer opens the room by its address before it starts ...
    ppage.goto(f"/discussions/{discussion().pk}/")
    expect(ppage.get_by_text("Not started yet.")).to_be_visible()
    expect_live(ppage)
    mark_document(ppage)

    with mpage.expect_navigation():
        mpage.get_by_role("button", name="Start the discussion").click()
    expect(mpage.get_by_text("Discussion started.")).to_be_visible()
    expect(mpage.locator("#discussion-status")).to_have_text("In progress")
    now_first = f"Now discussing: 1. {FIRST_FAMILY} ({FIRST_CASE})"
    expect(mpage.locator("#now-discussing")).to_have_text(now_first)
    assert discussion().status == Discussion.Status.IN_PROGRESS

    # ... and their page reloads itself into the running discussion (nothing could have
    # been typed before the start).
    expect(ppage.locator("#discussion-status")).to_have_text("In progress", timeout=LIVE_WAIT_MS)
    assert ppage.evaluate("window.__sameDocument === undefined"), "expected a reload on start"
    expect(ppage.locator("#now-discussing")).to_have_text(now_first)

    # The social worker joins from the team page, where the discussion is now running.
    open_room_from_team_page(worker)
    expect(wpage.locator("#discussion-status")).to_have_text("In progress")

    for tab, me in ((manager, MANAGER), (worker, SOCIAL_WORKER), (probation, PROBATION_OFFICER)):
        page = tab.page
        expect_live(page)
        presence = page.locator("#presence")
        expect(presence).to_be_visible()
        expect(presence.get_by_role("heading", name="In the room now")).to_be_visible()
        people = presence.locator("[data-presence-list] li")
        expect(people).to_have_count(3, timeout=LIVE_WAIT_MS)
        for username, name in NAMES.items():
            label = f"{name} (you)" if username == me else name
            expect(presence.locator("li .app-presence__name", has_text=name)).to_have_text(label)
        expect(presence).to_contain_text("Probation officer, Probation")
        expect(page.locator(f"#agenda-list li[data-item='{first.pk}'] [data-now]")).to_be_visible()
        mark_document(page)

    # --- 2. two people type into different sections at the same time -------------------
    worry = "Dean missed a probation appointment and Kerry sounded anxious"
    strength = "Kerry keeps every clinic appointment and Mia is settled at school"
    type_at_once((textarea(wpage, FIRST_CASE, WORRIES), worry.split()),
                 (textarea(ppage, FIRST_CASE, WORKING_WELL), strength.split()))
    expect_saved(wpage, FIRST_CASE, WORRIES)
    expect_saved(ppage, FIRST_CASE, WORKING_WELL)
    # Each sees the other's words arrive, and so does the manager.
    expect(textarea(ppage, FIRST_CASE, WORRIES)).to_have_value(worry, timeout=LIVE_WAIT_MS)
    expect(textarea(wpage, FIRST_CASE, WORKING_WELL)).to_have_value(strength, timeout=LIVE_WAIT_MS)
    expect(textarea(mpage, FIRST_CASE, WORRIES)).to_have_value(worry, timeout=LIVE_WAIT_MS)
    expect(textarea(mpage, FIRST_CASE, WORKING_WELL)).to_have_value(strength, timeout=LIVE_WAIT_MS)
    assert section(FIRST_CASE, WORRIES).text == worry
    assert section(FIRST_CASE, WORRIES).updated_by.username == SOCIAL_WORKER
    assert section(FIRST_CASE, WORKING_WELL).text == strength
    assert section(FIRST_CASE, WORKING_WELL).updated_by.username == PROBATION_OFFICER
    for page in (mpage, wpage, ppage):
        assert_not_reloaded(page)

    # --- 3. two people type into the same section at the same time ---------------------
    worker_words = "Sam arranges a school meeting about attendance".split()
    probation_words = "Priya reviews licence conditions with Dean".split()
    type_at_once((textarea(wpage, FIRST_CASE, NEEDS), worker_words),
                 (textarea(ppage, FIRST_CASE, NEEDS), probation_words))
    needs = section(FIRST_CASE, NEEDS)

    def settled() -> tuple[str, list[KeptText]]:
        needs.refresh_from_db()
        return needs.text, list(KeptText.objects.filter(section=needs, resolution=""))

    # Both started from the same (empty) text and wrote at the same place: one text is
    # the section's, the other is kept whole beside it.
    expect(wpage.locator(f"#section-{needs.pk} .app-kept")).to_have_count(1, timeout=SETTLE_MS)
    expect(ppage.locator(f"#section-{needs.pk} .app-kept")).to_have_count(1, timeout=SETTLE_MS)
    expect(mpage.locator(f"#section-{needs.pk} .app-kept")).to_have_count(1, timeout=SETTLE_MS)
    text, kept = settled()
    assert len(kept) == 1, (text, kept)
    stored = f"{text}\n{kept[0].text}"
    for word in worker_words + probation_words:
        assert word in stored, (word, stored)
    kept_author = NAMES[kept[0].author.username]
    for page in (mpage, wpage, ppage):
        block = page.locator(f"#section-{needs.pk}")
        expect(block.locator("textarea")).to_have_value(text, timeout=LIVE_WAIT_MS)
        shown = block.locator(".app-kept")
        expect(shown.get_by_role("heading", level=4)).to_contain_text(f"Kept text from {kept_author}")
        expect(shown.locator(".app-kept__text")).to_have_text(kept[0].text)
        on_page = block.locator("textarea").input_value() + "\n" + shown.inner_text()
        for word in worker_words + probation_words:
            assert word in on_page, (word, on_page)
        assert_not_reloaded(page)

    # Sign-off needs every kept text dealt with: the social worker adds it to the section.
    with wpage.expect_navigation():
        wpage.locator(f"#section-{needs.pk} .app-kept").get_by_role(
            "button", name="Add to section").click()
    expect(wpage.get_by_text("Kept text added to the section.")).to_be_visible()
    expect_live(wpage)
    mark_document(wpage)
    combined = f"{text}\n\n{kept[0].text}"
    for page in (mpage, wpage, ppage):
        expect(page.locator(f"#section-{needs.pk} textarea")).to_have_value(
            combined, timeout=LIVE_WAIT_MS)
        expect(page.locator(f"#section-{needs.pk} .app-kept")).to_have_count(0, timeout=LIVE_WAIT_MS)
    text, kept = settled()
    assert (text, kept) == (combined, [])

    # --- 4. decisions, moving on, and sign-off -----------------------------------------
    first_decision = "Stay on the child protection plan; review in four weeks"
    type_at_once((textarea(mpage, FIRST_CASE, DECISION), first_decision.split()))
    expect_saved(mpage, FIRST_CASE, DECISION)
    for page in (wpage, ppage):
        expect(textarea(page, FIRST_CASE, DECISION)).to_have_value(first_decision, timeout=LIVE_WAIT_MS)
    assert section(FIRST_CASE, DECISION).text == first_decision

    with mpage.expect_navigation():
        # Its accessible name reads "Discuss now: FS-24-0142" (the reference is visually
        # hidden; Chromium may put a space before the colon).
        mpage.locator(f"#agenda-list li[data-item='{second.pk}']").get_by_role(
            "button", name=re.compile(rf"^Discuss now\s*: {SECOND_CASE}$")).click()
    expect(mpage.get_by_text(f"Now discussing {SECOND_CASE}.")).to_be_visible()
    expect_live(mpage)
    now_second = f"Now discussing: 2. {SECOND_FAMILY} ({SECOND_CASE})"
    for page in (mpage, wpage, ppage):
        expect(page.locator("#now-discussing")).to_have_text(now_second, timeout=LIVE_WAIT_MS)
        expect(page.locator(f"#agenda-list li[data-item='{second.pk}'] [data-now]")).to_be_visible()
        expect(page.locator(f"#agenda-list li[data-item='{first.pk}'] [data-now]")).to_be_hidden()
        expect(page.locator(f"#item-{second.pk}")).to_have_class(re.compile(r"app-discussion-item--current"))
    for page in (wpage, ppage):
        assert_not_reloaded(page)
    assert discussion().current_item_id == second.pk

    second_decision = "Step down to child in need support; close review in three months"
    type_at_once((textarea(mpage, SECOND_CASE, DECISION), second_decision.split()))
    expect_saved(mpage, SECOND_CASE, DECISION)
    for page in (wpage, ppage):
        expect(textarea(page, SECOND_CASE, DECISION)).to_have_value(second_decision, timeout=LIVE_WAIT_MS)
    assert section(SECOND_CASE, DECISION).text == second_decision

    # The meeting runs out of time before the third family: the manager takes it off the
    # agenda, and it goes from everyone's page without a reload (no decision to invent).
    with mpage.expect_navigation():
        mpage.locator(f"#agenda-list li[data-item='{unreached.pk}']").get_by_role(
            "button", name=re.compile(rf"^Not reached: take off the agenda\s*: {UNREACHED_CASE}$")
        ).click()
    expect(mpage.get_by_text("Agenda updated.")).to_be_visible()
    for page in (mpage, wpage, ppage):
        expect(page.locator(f"[data-item='{unreached.pk}']")).to_have_count(0, timeout=LIVE_WAIT_MS)
        expect(page.locator("#agenda-list li")).to_have_count(2)
    for page in (wpage, ppage):
        assert_not_reloaded(page)
    assert not AgendaItem.objects.filter(pk=unreached.pk).exists()

    # The social worker has the Ashworth case open in another tab while the record is filed.
    case_tab = open_page(beside=worker)
    cpage = case_tab.page
    ashworth = Case.objects.get(reference=FIRST_CASE)
    cpage.goto(f"/cases/{ashworth.pk}/")
    expect(cpage.get_by_role("heading", level=1, name=FIRST_FAMILY)).to_be_visible()
    expect_live(cpage)
    mark_document(cpage)

    with mpage.expect_navigation():
        mpage.get_by_role("button", name="Sign off and file the record").click()
    expect(mpage.get_by_text("Signed off. The record is filed in each case")).to_be_visible()
    expect(mpage.locator("#discussion-status")).to_have_text("Signed off")
    expect(mpage.locator("#signed-off")).to_be_visible()

    filed = discussion()
    assert filed.status == Discussion.Status.SIGNED_OFF
    assert filed.signed_off_by.username == MANAGER
    notes = {}
    for reference, decision in ((FIRST_CASE, first_decision), (SECOND_CASE, second_decision)):
        note = agenda_item(reference).filed_note
        assert note is not None and note.is_final
        assert note.note_type == CaseNote.NoteType.GROUP_CASE_DISCUSSION
        assert note.case.reference == reference
        assert decision in note.body
        notes[reference] = note
    for words in (worry, strength, combined):
        assert words in notes[FIRST_CASE].body

    # The note arrives on the social worker's open case page, without a reload.
    entry = cpage.locator(f"#note-{notes[FIRST_CASE].pk}")
    expect(entry).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(entry.get_by_role("heading", level=3)).to_contain_text("Group case discussion")
    expect(entry).to_contain_text(first_decision)
    expect(cpage.locator("#notes > [data-note]").first).to_have_id(f"note-{notes[FIRST_CASE].pk}")
    assert_not_reloaded(cpage)

    # Everyone else's record is locked in place.
    for page in (wpage, ppage):
        expect(page.locator("#live-reload")).to_be_visible(timeout=LIVE_WAIT_MS)
        expect(page.locator("#live-reload")).to_contain_text("The discussion has been signed off")
        for reference in (FIRST_CASE, SECOND_CASE):
            for label in (WORRIES, WORKING_WELL, NEEDS, DECISION):
                expect(textarea(page, reference, label)).not_to_be_editable()
        expect(page.locator(".app-section__save")).to_have_count(0)
        assert_not_reloaded(page)

    # Opened afresh from the case record, the note is there too.
    cpage.goto(f"/cases/{ashworth.pk}/")
    expect(cpage.locator(f"#note-{notes[FIRST_CASE].pk}")).to_contain_text(first_decision)

    # --- 5. nothing went wrong on any page -----------------------------------------------
    for tab in (manager, worker, probation, case_tab):
        assert tab.problems == []


# --- a failing network -------------------------------------------------------------------

class Link:
    """A page's discussion socket, passed through the test (route it before the page
    opens): the page's saves can be held and let go, the page's next save or a server
    message can be lost with the connection, and while `down` new connections get no
    answer, so the page is never synced (its pages and forms still load)."""

    def __init__(self, page):
        self.page = page
        self.hold = False  # the page's saves wait in `held` ...
        self.held: list[tuple[object, str]] = []
        self.drop_next_save = False  # the page's next save is lost with the connection
        self.lose = None  # a test of a server message: the first that passes is lost so
        self.down = False
        page.route_web_socket(re.compile(r"/ws/discussions/\d+/$"), self._route)

    def _route(self, ws) -> None:
        if self.down:
            return  # nothing behind it: the page waits, never synced
        server = ws.connect_to_server()

        def from_page(frame) -> None:
            if json.loads(frame).get("type") == "section.save":
                if self.drop_next_save:
                    self.drop_next_save = False
                    ws.close()
                    server.close()
                    return
                if self.hold:
                    self.held.append((server, frame))
                    return
            server.send(frame)

        def from_server(frame) -> None:
            if self.lose is not None and self.lose(json.loads(frame)):
                self.lose = None
                ws.close()
                server.close()
                return
            ws.send(frame)

        ws.on_message(from_page)
        server.on_message(from_server)

    def release(self) -> None:
        held, self.held, self.hold = self.held, [], False
        for server, frame in held:
            server.send(frame)

    def cut(self) -> None:
        """The connection drops and cannot come back until `mend`."""
        self.down = True
        self.page.evaluate("window.discussionRoom.socket?.close()")
        expect(self.page.locator("#live-status")).not_to_have_attribute("data-state", "live")

    def mend(self) -> None:
        self.down = False
        self.page.evaluate("window.discussionRoom.socket?.close()")  # try again now
        expect(self.page.locator("#live-status")).to_have_attribute("data-state", "live",
                                                                    timeout=SETTLE_MS)


def wait_until(page, condition, what: str) -> None:
    """Wait for `condition` (about the link), letting the page's socket run meanwhile."""
    deadline = time.monotonic() + LIVE_WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        page.wait_for_timeout(50)


def user(username: str):
    return get_user_model().objects.get(username=username)


def in_the_room(open_page, username: str = SOCIAL_WORKER, *, beside=None):
    """A running discussion's room, open and live, its socket through a Link."""
    if discussion().status == Discussion.Status.SCHEDULED:
        do_start_discussion(acting_user=user(MANAGER), discussion=discussion())
    tab = open_page(beside=beside)
    if beside is None:
        sign_in(tab, username)
    link = Link(tab.page)
    tab.page.goto(f"/discussions/{discussion().pk}/")
    expect_live(tab.page)
    mark_document(tab.page)
    return tab, link


def test_typing_on_after_a_clash_stays_until_it_is_kept_though_the_connection_drops(
        demo_data, open_page):
    tab, link = in_the_room(open_page)
    page = tab.page
    needs = section(FIRST_CASE, NEEDS)
    area = textarea(page, FIRST_CASE, NEEDS)

    # Sam's first words are on their way when Priya saves the same place ...
    link.hold = True
    area.press_sequentially("Sam arranges a school meeting", delay=15)
    wait_until(page, lambda: link.held, "the page's save")
    theirs = "Priya reviews licence conditions with Dean"
    do_save_section(acting_user=user(PROBATION_OFFICER), section=needs, text=theirs,
                    version=1, base_text="")
    # ... Sam types on; the clash comes back (Sam's first words kept beside the section),
    # and the connection drops as the page sends the rest.
    area.press_sequentially(" about attendance", delay=15)
    typed = "Sam arranges a school meeting about attendance"
    link.drop_next_save = True
    link.release()

    # Back online, everything Sam typed is kept beside the section, on the page and in
    # the database; only then does the textarea show the section as Priya left it.
    kept = section_block(page, FIRST_CASE, NEEDS).locator(".app-kept__text")
    expect(kept.filter(has_text=re.compile(f"^{typed}$"))).to_have_count(1, timeout=SETTLE_MS)
    assert not link.drop_next_save, "the page never sent what was typed on"
    assert KeptText.objects.filter(section=needs, text=typed, author__username=SOCIAL_WORKER).exists()
    expect(area).to_have_value(theirs)
    needs.refresh_from_db()
    assert needs.text == theirs
    expect_live(page)
    assert_not_reloaded(page)
    assert tab.problems == []


def test_a_save_made_though_its_answer_was_lost_is_not_taken_for_a_colleagues(
        demo_data, open_page):
    tab, link = in_the_room(open_page)
    page = tab.page
    needs = section(FIRST_CASE, NEEDS)
    area = textarea(page, FIRST_CASE, NEEDS)
    status = section_block(page, FIRST_CASE, NEEDS).locator("[data-section-status]")

    # The save reaches the database; its answer is lost with the connection, which
    # stays down while Sam types on.
    link.down = True
    link.lose = lambda message: message.get("type") in ("section.saved", "section")
    area.press_sequentially("Sam arranges a school meeting", delay=15)
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "live", timeout=SETTLE_MS)
    needs.refresh_from_db()
    assert needs.text == "Sam arranges a school meeting"
    area.press_sequentially(" about attendance", delay=15)

    # Back online: the section's text is Sam's own, so the rest is simply saved.
    link.mend()
    expect(status).to_contain_text("Saved at", timeout=SETTLE_MS)
    typed = "Sam arranges a school meeting about attendance"
    needs.refresh_from_db()
    assert needs.text == typed
    assert not KeptText.objects.filter(section=needs).exists()
    expect(section_block(page, FIRST_CASE, NEEDS).locator(".app-kept")).to_have_count(0)
    expect(status).not_to_contain_text("changed")
    expect(area).to_have_value(typed)
    assert_not_reloaded(page)
    assert tab.problems == []


def test_leaving_the_page_never_loses_unsaved_text(demo_data, open_page):
    first, link = in_the_room(open_page)
    page = first.page
    # The same person, in a second tab, agrees an action: it arrives on the first page
    # with its Remove button, which was not there when the page started.
    second, _ = in_the_room(open_page, beside=first)
    block = second.page.locator(f"#item-{agenda_item(FIRST_CASE).pk}")
    block.get_by_label("What needs to be done").fill("Book the school meeting")
    block.get_by_label("Owner").select_option(index=1)
    block.get_by_label("Due by").fill("31/12/2099")
    with second.page.expect_navigation():
        block.get_by_role("button", name="Add action").click()
    remove = page.get_by_role("button", name=re.compile(r"^Remove\s*action: Book the school meeting$"))
    expect(remove).to_be_visible(timeout=LIVE_WAIT_MS)

    # The connection drops and Sam types into two sections: nothing can be saved yet.
    link.cut()
    worry, strength = "Kerry sounded anxious", "Mia is settled at school"
    textarea(page, FIRST_CASE, WORRIES).fill(worry)
    textarea(page, FIRST_CASE, WORKING_WELL).fill(strength)
    notice = page.locator("#unsaved-notice")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))

    # A form that would load another page is not sent, and the page says why: the new
    # Remove button, and a section's own Save (it would carry only its own text).
    for button in (remove, section_block(page, FIRST_CASE, WORKING_WELL).get_by_role("button", name="Save")):
        page.evaluate("document.getElementById('unsaved-notice').hidden = true")  # each shows it
        button.click()
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("Not sent: some of your text is not saved yet")
        expect(notice).to_be_focused()
        assert_not_reloaded(page)
    assert dialogs == []
    assert discussion().items.get(pk=agenda_item(FIRST_CASE).pk).actions.count() == 1

    # Following a link, the browser asks first; staying keeps the text.
    page.get_by_role("link", name="Open the case record").first.click()
    wait_until(page, lambda: dialogs, "the question before leaving")
    assert dialogs == ["beforeunload"]
    assert_not_reloaded(page)
    expect(textarea(page, FIRST_CASE, WORRIES)).to_have_value(worry)

    # Back online, both are saved, the notice goes, and leaving asks nothing.
    link.mend()
    expect_saved(page, FIRST_CASE, WORRIES)
    expect_saved(page, FIRST_CASE, WORKING_WELL)
    expect(notice).to_be_hidden()
    assert (section(FIRST_CASE, WORRIES).text, section(FIRST_CASE, WORKING_WELL).text) == (worry, strength)
    with page.expect_navigation():
        remove.click()
    assert dialogs == ["beforeunload"]
    assert not discussion().items.get(pk=agenda_item(FIRST_CASE).pk).actions.exists()
    assert first.problems == [] and second.problems == []


def test_a_colleague_typing_for_long_stays_shown_as_editing(demo_data, open_page):
    worker, _ = in_the_room(open_page, SOCIAL_WORKER)
    probation, _ = in_the_room(open_page, PROBATION_OFFICER)
    area = textarea(worker.page, FIRST_CASE, WORRIES)
    line = section_block(probation.page, FIRST_CASE, WORRIES).locator("[data-editing]")

    # Sam types a word about every half second for longer than a silent line lasts (8 s).
    area.focus()
    started = time.monotonic()
    while time.monotonic() - started < 11:
        area.press_sequentially("word ", delay=20)
        worker.page.wait_for_timeout(400)
        expect(line).to_have_text("Sam Patel is editing…", timeout=1_000)
    # Sam stops: the line goes.
    expect(line).to_have_text("", timeout=SETTLE_MS)
    for tab in (worker, probation):
        assert tab.problems == []
