"""The live case room in a real browser, served by Daphne: two practitioners of
different agencies on the Ashworth case (FS-24-0117) at once.

- Each sees who else has the case open, and a colleague's new note appears without a
  reload, newest first; another agency's restricted note appears only as its
  placeholder, and its text never reaches the other browser, not even in a WebSocket
  frame.
- A dropped connection says so, reconnects, and catches up on what it missed.
- A page too far behind is asked to reload (never reloaded for the person); access that
  ends closes the room for good, and the page stops showing the case.
- The note form saves a draft as it is typed; two tabs editing the same draft show both
  texts side by side instead of losing either; a colleague sees "… is writing a note…".
"""

import datetime
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import dateformat, timezone
from playwright.sync_api import expect

from casenotes.actions import do_add_person, do_create_note, do_set_specialist_agency
from casenotes.models import Case, CaseNote, Person
from tests.browser.conftest import server_env
from tests.browser.pages import sign_in
from tests.servers import daphne_server

pytestmark = pytest.mark.browser

SOCIAL_WORKER = "social.worker"  # Sam Patel, Children's Services
PROBATION_OFFICER = "probation"  # Priya Shah, Probation
CASE_REFERENCE = "FS-24-0117"
FAMILY = "Ashworth family"
LIVE_WAIT_MS = 5_000  # "within a few seconds"
# Open sockets re-check their access every second here (30 s by default), so access that
# ends without a push (a signed-out session) closes a room quickly.
SERVER_ENV = {"LIVE_RECHECK_SECONDS": "1"}


@pytest.fixture
def live_site(transactional_db, settings, request):
    """The demo seed, committed, then Daphne serving it (the seed refuses unless DEBUG
    is on; the server runs with DEBUG off)."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEBUG = False
    with daphne_server(env={**SERVER_ENV, **server_env(request)}) as url:
        yield url


def case_id() -> int:
    return Case.objects.get(reference=CASE_REFERENCE).pk


def open_case(tab) -> None:
    """Open the case page and wait until its live connection is synced."""
    page = tab.page
    page.goto(f"/cases/{case_id()}/")
    page.get_by_role("heading", level=1, name=FAMILY).wait_for()
    expect_live(page)
    # A marker that only survives as long as the page is not reloaded.
    page.evaluate("window.__sameDocument = true")


def expect_live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#live-status [data-live-title]")).to_have_text("Live")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def record_frames(tab) -> list[str]:
    """Every WebSocket frame this tab receives, as text (listen before navigating)."""
    frames: list[str] = []

    def on_socket(socket):
        socket.on("framereceived", lambda payload: frames.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", "replace")))

    tab.page.on("websocket", on_socket)
    return frames


def record_banner_states(page) -> None:
    """Keep every state the connection banner shows, in window.__states."""
    page.evaluate("""() => {
        const banner = document.getElementById("live-status");
        window.__states = [];
        new MutationObserver(() => window.__states.push(banner.dataset.state))
            .observe(banner, {attributes: true, attributeFilter: ["data-state"]});
    }""")


def note_entries(page):
    return page.locator("#notes > [data-note]")


def fill_note(page, *, body: str, moment: datetime.datetime, sensitivity: str = "Standard") -> None:
    page.get_by_label("Type of note").select_option(label="Home visit")
    page.get_by_label("Day", exact=True).fill(str(moment.day))
    page.get_by_label("Month", exact=True).fill(str(moment.month))
    page.get_by_label("Year", exact=True).fill(str(moment.year))
    page.get_by_label("Time", exact=True).fill(f"{moment:%H:%M}")
    page.get_by_label("Note", exact=True).fill(body)
    page.get_by_role("radio", name=sensitivity).check()


def record_a_note(tab, *, body: str, sensitivity: str = "Standard") -> CaseNote:
    """Through the note form, as a person would; back on the case page afterwards."""
    page = tab.page
    page.goto(f"/cases/{case_id()}/notes/new/")
    page.get_by_role("heading", level=1, name="Add a note").wait_for()
    fill_note(page, body=body, moment=now_to_the_minute(), sensitivity=sensitivity)
    page.get_by_role("button", name="Finalise note").click()
    page.get_by_text("Note finalised.").wait_for()
    notes = CaseNote.objects.filter(body=body)
    assert notes.count() == 1  # autosave and the form never make two notes of one
    note = notes.get()
    assert note.is_final
    return note


def watcher_and_writer(open_page) -> tuple:
    """B (probation) with the case page open and live, and A (the social worker) signed
    in: (B's tab, A's tab)."""
    probation = open_page()
    sign_in(probation, PROBATION_OFFICER)
    open_case(probation)
    writer = open_page()
    sign_in(writer, SOCIAL_WORKER)
    return probation, writer


def now_to_the_minute() -> datetime.datetime:
    return timezone.localtime().replace(second=0, microsecond=0)


def placeholder_text(note: CaseNote) -> str:
    day = dateformat.format(timezone.localtime(note.occurred_at), "j M Y")
    return f"Restricted note — {note.author_agency.short_name}, {day}"


def test_colleagues_see_who_is_here_and_new_notes_live_and_catch_up_after_a_drop(live_site, open_page):
    worker = open_page()  # A: Sam Patel, social worker, Children's Services
    sign_in(worker, SOCIAL_WORKER)
    probation = open_page()  # B: Priya Shah, probation officer
    frames = record_frames(probation)
    sign_in(probation, PROBATION_OFFICER)
    open_case(worker)
    open_case(probation)
    bpage = probation.page
    for notice in ("#live-reload", "#live-changed", "#live-error"):
        expect(bpage.locator(notice)).to_be_hidden()

    # --- who has the case open ----------------------------------------------------------
    for page in (worker.page, bpage):
        people = page.locator("#presence [data-presence-list] > li")
        expect(people).to_have_count(2)
        expect(people.filter(has_text="Sam Patel")).to_have_text(
            re.compile(r"^Sam Patel( \(you\))?, Social worker, Children's Services$"))
        expect(people.filter(has_text="Priya Shah")).to_have_text(
            re.compile(r"^Priya Shah( \(you\))?, Probation officer, Probation$"))
    expect(bpage.locator("#presence")).to_contain_text("Priya Shah (you)")

    # --- a standard note appears for B, at the top, without a reload ----------------------
    # A records it from another tab, so A's case page stays open too.
    writer = open_page(beside=worker)
    standard_body = "Live test: home visit, Mia read her school book to me. Ref standard-1."
    standard = record_a_note(writer, body=standard_body)
    newest = note_entries(bpage).first
    expect(newest).to_have_attribute("id", f"note-{standard.pk}", timeout=LIVE_WAIT_MS)
    expect(newest).to_contain_text(standard_body)
    expect(note_entries(worker.page).first).to_have_attribute("id", f"note-{standard.pk}")
    assert_not_reloaded(bpage)

    # --- an agency-restricted note: B sees only the placeholder ----------------------------
    restricted_body = "Live test: Kerry disclosed a housing worry. Ref restricted-2."
    restricted = record_a_note(writer, body=restricted_body, sensitivity="Agency-restricted")
    placeholder = bpage.locator(f"#note-{restricted.pk}")
    expect(placeholder).to_have_text(placeholder_text(restricted), timeout=LIVE_WAIT_MS)
    expect(note_entries(bpage).first).to_have_attribute("id", f"note-{restricted.pk}")
    assert placeholder.get_attribute("class") == "app-placeholder"
    # A's own agency reads it in full.
    expect(worker.page.locator(f"#note-{restricted.pk}")).to_contain_text(restricted_body)
    assert_not_reloaded(bpage)

    # --- B's socket drops: the banner says so, and it comes back by itself ----------------
    record_banner_states(bpage)
    bpage.evaluate("window.caseRoom.socket.close()")
    bpage.wait_for_function("window.__states.includes('reconnecting')")
    expect_live(bpage)
    assert bpage.evaluate("window.__states.at(-1)") == "live"

    # --- B goes offline; A records a note meanwhile; B catches up when back ----------------
    seq_before = bpage.evaluate("window.caseRoom.lastSeq")
    probation.context.set_offline(True)
    expect(bpage.locator("#live-status")).to_have_attribute("data-state", "offline")
    expect(bpage.locator("#live-status [data-live-title]")).to_have_text("Offline")
    bpage.wait_for_function("window.caseRoom.socket === null")  # closed, not left to linger
    missed_body = "Live test: phone call with the school while B was away. Ref missed-3."
    missed = record_a_note(writer, body=missed_body)
    bpage.wait_for_timeout(500)
    expect(bpage.locator(f"#note-{missed.pk}")).to_have_count(0)
    record_banner_states(bpage)
    probation.context.set_offline(False)
    expect(note_entries(bpage).first).to_have_attribute("id", f"note-{missed.pk}", timeout=LIVE_WAIT_MS)
    expect(note_entries(bpage).first).to_contain_text(missed_body)
    expect_live(bpage)
    assert "reconnecting" in bpage.evaluate("window.__states")
    assert bpage.evaluate("window.caseRoom.lastSeq") > seq_before
    assert_not_reloaded(bpage)

    # --- a change to the case itself: a notice to reload, nothing rewritten in place ------
    # Written here, outside the server, so no live notice is sent: B hears of it only by
    # catching up on its next connection.
    expect(bpage.locator("#live-changed")).to_be_hidden()
    manager = get_user_model().objects.get(username="team.manager")
    do_add_person(acting_user=manager, case=Case.objects.get(reference=CASE_REFERENCE),
                  full_name="Ava Ashworth", role_in_family=Person.RoleInFamily.CHILD,
                  date_of_birth=datetime.date(2025, 1, 5))
    bpage.evaluate("window.caseRoom.socket.close()")
    expect(bpage.locator("#live-changed")).to_have_text(
        "This case has changed — reload to see the changes", timeout=LIVE_WAIT_MS)
    expect_live(bpage)
    assert "Ava Ashworth" not in bpage.locator("#children").inner_text()
    assert_not_reloaded(bpage)

    # --- nothing of the restricted note ever reached B ------------------------------------
    assert "housing worry" not in bpage.content()
    assert frames, "B received no WebSocket frames at all"
    assert not [f for f in frames if "housing worry" in f or "restricted-2" in f]
    events = [json.loads(f) for f in frames if '"type": "event"' in f]
    assert {e["note"] for e in events if e.get("note") == restricted.pk} == {restricted.pk}
    assert all(e["level"] == "placeholder" for e in events if e.get("note") == restricted.pk)

    for tab in (worker, writer, probation):
        assert tab.problems == [], tab.problems


@pytest.mark.server_env(CASE_NOTES_PER_PAGE=3)
def test_a_new_note_joins_the_newest_page_and_an_older_page_is_told_the_record_changed(
        live_site, open_page):
    """A long record comes in pages. A live note takes its place on the page it belongs
    to (the newest, for a note of now); a page of older notes does not gain it, and
    says the record has changed instead."""
    worker = open_page()
    sign_in(worker, SOCIAL_WORKER)
    probation = open_page()
    sign_in(probation, PROBATION_OFFICER)
    open_case(probation)  # the newest page
    older = worker.page
    older.goto(f"/cases/{case_id()}/?page=2")
    older.get_by_role("heading", level=1, name=FAMILY).wait_for()
    expect_live(older)
    older.evaluate("window.__sameDocument = true")
    expect(older.locator("#notes-count")).to_contain_text("Showing notes 4 to 6 of")
    on_page_two = note_entries(older).evaluate_all("(entries) => entries.map((e) => e.id)")
    assert len(on_page_two) == 3

    writer = open_page(beside=worker)
    # An addendum to a note on a page's boundary (its newest, with newer pages before it,
    # or its oldest, with older pages after it): the note stays on that page.
    newest_page = open_page(beside=worker)
    open_case(newest_page)
    pages = [(tab, note_entries(tab.page).evaluate_all("(entries) => entries.map((e) => e.id)"))
             for tab in (newest_page, worker)]
    tab, entries, boundary = next(
        (tab, entries, entries[index]) for tab, entries in pages
        for index, side in ((0, "newer"), (-1, "older"))
        if tab.page.locator(f"#{entries[index]}").evaluate("(e) => e.tagName") == "ARTICLE"
        and tab.page.locator("#notes").get_attribute(f"data-{side}-pages") == "true")
    writer.page.goto(f"/cases/{case_id()}/notes/{boundary.removeprefix('note-')}/")
    writer.page.get_by_label("Add an addendum").fill("Live test: an addendum at the boundary.")
    writer.page.get_by_role("button", name="Add addendum").click()
    expect(tab.page.locator(f"#{boundary}")).to_contain_text("1 addendum", timeout=LIVE_WAIT_MS)
    expect(tab.page.locator("#live-changed")).to_be_hidden()
    assert note_entries(tab.page).evaluate_all("(entries) => entries.map((e) => e.id)") == entries

    body = "Live test: the new note of a long record. Ref paged-1."
    note = record_a_note(writer, body=body)
    expect(note_entries(probation.page).first).to_have_attribute(
        "id", f"note-{note.pk}", timeout=LIVE_WAIT_MS)
    expect(note_entries(probation.page)).to_have_count(4)  # a page longer until reloaded
    expect(older.locator("#live-changed")).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(older.locator(f"#note-{note.pk}")).to_have_count(0)
    assert note_entries(older).evaluate_all("(entries) => entries.map((e) => e.id)") == on_page_two
    assert_not_reloaded(older)
    # Following the pagination to the newest page shows the note there.
    older.get_by_role("link", name="Page 1", exact=True).click()
    expect(note_entries(older).first).to_have_attribute("id", f"note-{note.pk}")
    for each in (worker, writer, probation, newest_page):
        assert each.problems == [], each.problems


def test_someone_writing_who_closes_their_tab_is_no_longer_shown_writing(live_site, open_page):
    """The line goes with the person (the room's presence), not 8 s after their last key."""
    probation, writer = watcher_and_writer(open_page)
    bpage = probation.page
    writer.page.goto(f"/cases/{case_id()}/notes/new/")
    expect_live(writer.page)
    writer.page.get_by_label("Note", exact=True).press_sequentially("Spoke to Kerry", delay=20)
    expect(bpage.locator("#writing")).to_have_text(
        "Sam (Children's Services) is writing a note…", timeout=LIVE_WAIT_MS)
    writer.page.close()
    expect(bpage.locator("#presence")).not_to_contain_text("Sam", timeout=LIVE_WAIT_MS)
    # Well before the line would expire of itself (WRITING_EXPIRES_MS, 8 s).
    expect(bpage.locator("#writing")).to_be_empty(timeout=500)


def test_autosave_keeps_every_text_and_colleagues_see_someone_writing(live_site, open_page):
    probation = open_page()  # B, watching the case page
    sign_in(probation, PROBATION_OFFICER)
    open_case(probation)
    bpage = probation.page

    first = open_page()  # A, first tab: the note form
    sign_in(first, SOCIAL_WORKER)
    page = first.page
    page.goto(f"/cases/{case_id()}/notes/new/")
    page.get_by_role("heading", level=1, name="Add a note").wait_for()
    expect_live(page)
    moment = now_to_the_minute() - datetime.timedelta(minutes=10)
    page.get_by_label("Type of note").select_option(label="Home visit")
    page.get_by_label("Day", exact=True).fill(str(moment.day))
    page.get_by_label("Month", exact=True).fill(str(moment.month))
    page.get_by_label("Year", exact=True).fill(str(moment.year))
    page.get_by_label("Time", exact=True).fill(f"{moment:%H:%M}")

    # --- typing: B sees that Sam is writing; the draft saves itself --------------------
    typed = "Autosave test: Leo was asleep; Kerry and I talked about nursery."
    textarea = page.get_by_label("Note", exact=True)
    textarea.press_sequentially(typed, delay=15)
    expect(bpage.locator("#writing")).to_have_text(
        "Sam (Children's Services) is writing a note…", timeout=LIVE_WAIT_MS)
    status = page.locator("#autosave-status")
    expect(status).to_have_text(re.compile(r"^Draft saved at \d{2}:\d{2}:\d{2}$"), timeout=LIVE_WAIT_MS)
    draft = CaseNote.objects.get(body=typed)
    assert not draft.is_final
    assert draft.author.username == SOCIAL_WORKER
    assert draft.note_type == CaseNote.NoteType.HOME_VISIT
    assert timezone.localtime(draft.occurred_at) == moment
    # The form now edits that draft (a reload opens it, a button updates it).
    edit_url = f"/cases/{case_id()}/notes/{draft.pk}/edit/"
    expect(page).to_have_url(re.compile(re.escape(edit_url) + "$"))
    assert page.locator("form[data-autosave]").get_attribute("action") == edit_url
    assert page.locator('input[name="version"]').input_value() == str(draft.version)
    # Leaving the form ends "is writing" for B at once.
    page.get_by_role("heading", level=1).click()
    expect(bpage.locator("#writing")).to_be_empty(timeout=LIVE_WAIT_MS)
    # A draft is its author's alone: nothing of it reached B.
    expect(bpage.locator(f"#note-{draft.pk}")).to_have_count(0)

    # --- a second tab of the same author opens the same draft ----------------------------
    second = open_page(beside=first)
    page2 = second.page
    page2.goto(edit_url)
    page2.get_by_role("heading", level=1, name="Edit draft note").wait_for()
    expect_live(page2)
    textarea2 = page2.get_by_label("Note", exact=True)
    expect(textarea2).to_have_value(typed)

    first_text = typed + " First tab: Mia's school called back."
    textarea.fill(first_text)
    saved_version = draft.version + 1
    expect(page.locator('input[name="version"]')).to_have_value(str(saved_version), timeout=LIVE_WAIT_MS)
    expect(status).to_have_text(re.compile(r"^Draft saved at "))
    assert CaseNote.objects.get(pk=draft.pk).body == first_text

    second_text = typed + " Second tab: Dean was not at home."
    textarea2.fill(second_text)
    panel = page2.locator("#autosave-conflict")
    expect(panel).to_be_visible(timeout=LIVE_WAIT_MS)
    # Both texts, side by side; neither lost, nothing overwritten.
    expect(panel.locator("#autosave-conflict-body")).to_have_text(first_text)
    expect(panel).to_contain_text("This draft was changed elsewhere")
    expect(textarea2).to_have_value(second_text)
    expect(page2.locator("#autosave-status")).to_contain_text("Not saved")
    assert CaseNote.objects.get(pk=draft.pk).body == first_text
    textarea_box, panel_box = textarea2.bounding_box(), panel.bounding_box()
    assert panel_box["x"] >= textarea_box["x"] + textarea_box["width"] - 1, "not side by side"

    # Keeping one's own text is a knowing choice: it saves over the other version.
    panel.get_by_role("button", name="Keep my text").click()
    expect(panel).to_be_hidden()
    expect(page2.locator('input[name="version"]')).to_have_value(str(saved_version + 1),
                                                                timeout=LIVE_WAIT_MS)
    expect(page2.locator("#autosave-status")).to_have_text(re.compile(r"^Draft saved at "))
    kept = CaseNote.objects.get(pk=draft.pk)
    assert kept.body == second_text
    assert kept.version == saved_version + 1
    # Every saved text stays in the note's history.
    assert {first_text, second_text, typed} <= set(kept.history.values_list("body", flat=True))

    # --- finalising from the second tab updates that draft, it does not add a note ------
    page2.get_by_role("button", name="Finalise note").click()
    page2.get_by_text("Note finalised.").wait_for()
    final = CaseNote.objects.get(pk=draft.pk)
    assert final.is_final and final.body == second_text
    assert CaseNote.objects.filter(body__startswith="Autosave test:").count() == 1
    # And now B sees it, live.
    expect(bpage.locator(f"#note-{draft.pk}")).to_contain_text("Dean was not at home",
                                                              timeout=LIVE_WAIT_MS)

    for tab in (probation, first, second):
        assert tab.problems == [], tab.problems


def _start_note(page, moment) -> None:
    """On the note form: a home visit at `moment`, once the form is live."""
    page.goto(f"/cases/{case_id()}/notes/new/")
    page.get_by_role("heading", level=1, name="Add a note").wait_for()
    expect_live(page)
    page.get_by_label("Type of note").select_option(label="Home visit")
    page.get_by_label("Day", exact=True).fill(str(moment.day))
    page.get_by_label("Month", exact=True).fill(str(moment.month))
    page.get_by_label("Year", exact=True).fill(str(moment.year))
    page.get_by_label("Time", exact=True).fill(f"{moment:%H:%M}")


def test_autosave_keeps_the_limit_to_an_adults_specialist_agency(live_site, open_page):
    """The draft saved as it is typed keeps "limit to this adult's specialist agency":
    without it, the finalised note would go to the author's own agency."""
    adult = Person.objects.filter(case_id=case_id()).exclude(
        role_in_family=Person.RoleInFamily.CHILD).order_by("pk").first()
    probation_service = get_user_model().objects.get(
        username=PROBATION_OFFICER).memberships.get().agency
    do_set_specialist_agency(acting_user=get_user_model().objects.get(username=SOCIAL_WORKER),
                             person=adult, agency=probation_service)
    tab = open_page()
    sign_in(tab, SOCIAL_WORKER)
    page = tab.page
    _start_note(page, now_to_the_minute() - datetime.timedelta(minutes=5))
    page.get_by_role("radio", name="Agency-restricted").check()
    page.get_by_role("group", name="Who is this note about?").get_by_label(adult.full_name).check()
    page.get_by_label("Agency-restricted notes: limit to an adult's specialist agency?").select_option(
        label=f"{adult.full_name}: {probation_service.short_name} only")
    typed = "Licence conditions discussed with the offender manager (LIMIT-4471)."
    page.get_by_label("Note", exact=True).press_sequentially(typed, delay=10)
    expect(page.locator("#autosave-status")).to_have_text(re.compile(r"^Draft saved at "),
                                                          timeout=LIVE_WAIT_MS)
    draft = CaseNote.objects.get(body=typed)
    assert (draft.restricted_person_id, draft.restricted_agency_id) == (adult.pk, probation_service.pk)
    assert tab.problems == [], tab.problems


def test_a_new_draft_whose_saves_lost_their_replies_is_adopted_not_created_again(
        live_site, open_page):
    """The first saves of a new note reach the server but their replies are lost with
    the connection. When the page's next save is refused as changed elsewhere, the form
    takes on the draft the server names, so keeping one's text saves it there: no loop
    of refusals, and never a second note."""
    tab = open_page()
    sign_in(tab, SOCIAL_WORKER)
    page = tab.page
    lose = {"replies": 2}

    def route(ws):
        server = ws.connect_to_server()

        def from_server(message):
            if lose["replies"] and isinstance(message, str) and '"draft.saved"' in message:
                lose["replies"] -= 1
                ws.close()  # the reply goes with the connection
                return
            ws.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/ws/cases/\d+/$"), route)
    _start_note(page, now_to_the_minute() - datetime.timedelta(minutes=5))
    textarea = page.get_by_label("Note", exact=True)
    textarea.press_sequentially("Lost replies: first words.", delay=10)
    # Two saves arrive, each reply lost; the page reconnects each time.
    draft = None
    for _ in range(150):
        draft = CaseNote.objects.filter(author__username=SOCIAL_WORKER,
                                        body__startswith="Lost replies:").first()
        if draft is not None and draft.version >= 2 and lose["replies"] == 0:
            break
        page.wait_for_timeout(200)
    assert draft is not None and draft.version == 2 and lose["replies"] == 0
    textarea.press_sequentially(" Then more.", delay=10)
    panel = page.locator("#autosave-conflict")
    expect(panel).to_be_visible(timeout=LIVE_WAIT_MS)
    panel.get_by_role("button", name="Keep my text").click()
    expect(page.locator("#autosave-status")).to_have_text(re.compile(r"^Draft saved at "),
                                                          timeout=LIVE_WAIT_MS)
    expect(panel).to_be_hidden()
    notes = CaseNote.objects.filter(body__startswith="Lost replies:")
    assert notes.count() == 1
    assert notes.get().body == "Lost replies: first words. Then more."
    edit_url = f"/cases/{case_id()}/notes/{draft.pk}/edit/"
    assert page.locator("form[data-autosave]").get_attribute("action") == edit_url
    page.get_by_role("button", name="Finalise note").click()
    page.get_by_text("Note finalised.").wait_for()
    assert notes.count() == 1 and notes.get().is_final


def test_a_note_finalised_while_its_first_autosave_is_unanswered_is_one_note(
        live_site, open_page):
    """The first save of a new note reaches the server, but its reply does not come:
    "Finalise note" waits a few seconds, then the form goes to the add page with the
    page's key, and finalises the draft that save made instead of adding a second note."""
    tab = open_page()
    sign_in(tab, SOCIAL_WORKER)
    page = tab.page

    def route(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: None if isinstance(message, str)
                          and '"draft.saved"' in message else ws.send(message))

    page.route_web_socket(re.compile(r"/ws/cases/\d+/$"), route)
    _start_note(page, now_to_the_minute() - datetime.timedelta(minutes=5))
    page.get_by_label("Note", exact=True).press_sequentially("Held submit: Leo at nursery.",
                                                             delay=10)
    notes = CaseNote.objects.filter(body__startswith="Held submit:")
    for _ in range(100):
        if notes.exists():
            break
        page.wait_for_timeout(100)
    assert notes.count() == 1 and not notes.get().is_final  # saved; the page was not told
    page.get_by_role("button", name="Finalise note").click()
    page.get_by_text("Note finalised.").wait_for(timeout=15_000)
    assert notes.count() == 1 and notes.get().is_final
    assert tab.problems == [], tab.problems


@pytest.mark.server_env(LIVE_RECHECK_SECONDS="600")  # no catch-up on the open connection
def test_a_notice_that_never_came_is_caught_up_though_a_later_one_did(live_site, open_page):
    """A note's live notice never reaches B's page (here: saved outside the server, so
    no notice is sent; in life a channel layer that dropped it), and a later note's does.
    B's connection then drops. The page resumes from the server's last checkpoint, not
    from the newest notice it saw, so the missed note arrives; the later one is not
    shown twice."""
    probation, writer = watcher_and_writer(open_page)
    bpage = probation.page

    author = get_user_model().objects.get(username=SOCIAL_WORKER)
    missed = do_create_note(acting_user=author, case=Case.objects.get(reference=CASE_REFERENCE),
                            note_type=CaseNote.NoteType.PHONE_CALL, finalise=True,
                            occurred_at=timezone.now() - datetime.timedelta(minutes=3),
                            body="Live test: a notice that never came (NEVER-CAME-8).")
    later = record_a_note(writer, body="Live test: the later note (LATER-9).")
    expect(bpage.locator(f"#note-{later.pk}")).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(bpage.locator(f"#note-{missed.pk}")).to_have_count(0)

    # Marks the later entry's element: sent again by the catch-up, it must be left as it
    # is (not replaced, which would lose a reader's place or focus in it).
    bpage.evaluate(f"document.getElementById('note-{later.pk}').__kept = true")

    bpage.evaluate("window.caseRoom.socket.close()")
    expect(bpage.locator(f"#note-{missed.pk}")).to_contain_text("NEVER-CAME-8",
                                                                timeout=LIVE_WAIT_MS)
    expect_live(bpage)
    expect(bpage.locator(f"#note-{later.pk}")).to_have_count(1)
    assert bpage.evaluate(f"document.getElementById('note-{later.pk}').__kept === true")
    assert_not_reloaded(bpage)
    for tab in (probation, writer):
        assert tab.problems == [], tab.problems


def test_a_page_far_behind_is_offered_a_reload_and_ended_access_closes_the_room(live_site, open_page):
    probation = open_page()
    sockets = []
    probation.page.on("websocket", lambda socket: sockets.append(socket))
    sign_in(probation, PROBATION_OFFICER)
    open_case(probation)
    page = probation.page
    assert len(sockets) == 1

    # --- a page that knows of events the server cannot replay: told to reload -----------
    page.evaluate("window.caseRoom.lastSeq = 2 ** 40; window.caseRoom.socket.close()")
    notice = page.locator("#live-reload")
    expect(notice).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(notice).to_contain_text("Reload the page to see it all.")
    expect(notice.get_by_role("link", name="Reload the page")).to_have_attribute(
        "href", f"/cases/{case_id()}/")
    expect_live(page)
    assert_not_reloaded(page)  # offered, never done for them
    assert len(sockets) == 2

    # --- the session ends (signed out in another tab): the room closes for good ---------
    other_tab = open_page(beside=probation)
    other_tab.page.goto("/")
    other_tab.page.get_by_role("button", name=re.compile("^Sign out")).click()
    other_tab.page.get_by_role("button", name="Sign in").wait_for()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "refused", timeout=LIVE_WAIT_MS)
    expect(page.locator("#live-status [data-live-title]")).to_have_text(
        "You no longer have access to this case.")
    # The case's notes leave the screen with the access.
    expect(note_entries(page)).to_have_count(0)
    expect(page.locator("#presence")).to_be_hidden()
    assert "Licence conditions" not in page.content()
    page.wait_for_timeout(3_000)  # longer than the first few reconnection delays
    assert len(sockets) == 2, "reconnected after access ended"
    assert page.evaluate("window.caseRoom.state") == "refused"

    for tab in (probation, other_tab):
        assert tab.problems == [], tab.problems
