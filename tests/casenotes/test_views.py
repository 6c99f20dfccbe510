"""The case pages: caseload, case, note form, note detail, draft edit, addenda."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEvent, Outcome
from casenotes.actions import (
    do_close_case,
    do_create_note,
    do_decide_transfer,
    do_finalise_note,
    do_open_break_glass,
    do_request_transfer,
    do_update_draft,
)
from casenotes.models import Addendum, CaseNote
from teams.models import Role

SEALED_TEXT = "refuge place"
MH_TEXT = "Medication review"
PROBATION_TEXT = "Licence conditions"


def _note_post(**overrides):
    moment = timezone.localtime() - datetime.timedelta(hours=1)
    data = {
        "note_type": "home_visit", "occurred_day": str(moment.day),
        "occurred_month": str(moment.month), "occurred_year": str(moment.year),
        "occurred_time": moment.strftime("%H:%M"), "body": "Saw both children at home.",
        "sensitivity": "standard", "intent": "draft",
    }
    data.update(overrides)
    return data


def _without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def _errors(response) -> list[str]:
    return re.findall(r'govuk-error-message">.*?Error:</span> (.*?)</p>', response.content.decode(), re.S)


# --- caseload -----------------------------------------------------------------------

def test_caseload_requires_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_caseload_lists_the_users_cases_with_their_details(demo):
    response = demo.client("social.worker").get("/")
    html = response.content.decode()
    assert response.status_code == 200
    for text in ["Ashworth family", "FS-24-0117", "Child protection plan", "Sam Patel",
                 "Northfield Family Safeguarding Team", "Begum family", "Child in need"]:
        assert text in html
    assert "Cole family" not in html  # another team's case
    assert AuditEvent.objects.filter(action=AuditAction.CASELOAD_VIEWED,
                                     actor_id=demo.user("social.worker").pk).count() == 1


def test_the_caseload_lists_the_users_own_unfinished_drafts_with_a_link_to_each(world):
    from django.test import Client

    worker, colleague = world.social_worker, world.user(Role.PROBATION_OFFICER)
    mine = world.draft(worker, body="Half-written visit note.")
    older = world.draft(worker, body="An older draft.", note_type=CaseNote.NoteType.PHONE_CALL)
    CaseNote.objects.filter(pk=older.pk).update(updated_at=mine.updated_at - datetime.timedelta(hours=2))
    world.draft(colleague, body="Someone else's draft.")
    world.standard_note(worker, body="Finished.")
    client = Client()
    client.force_login(worker)
    html = client.get("/").content.decode()
    drafts = html.split('id="my-drafts"', 1)[1].split("</table>", 1)[0]
    edit = lambda note: reverse("casenotes:note_edit", args=[world.case.pk, note.pk])  # noqa: E731
    assert drafts.index(edit(mine)) < drafts.index(edit(older))  # most recently saved first
    assert drafts.count("Continue") == 2 and "Harper family (FS-2025-0417)" in drafts
    assert "Half-written" not in drafts  # the list names the draft, not its text

    # The colleague sees only their own draft; someone with none sees no list at all.
    client.force_login(colleague)
    assert client.get("/").content.decode().count("Continue<span") == 1
    client.force_login(world.team_manager)
    assert 'id="my-drafts"' not in client.get("/").content.decode()


def test_a_case_open_only_through_emergency_access_is_marked_on_the_caseload(world):
    from django.test import Client

    opener = world.locality_users[Role.SOCIAL_WORKER]
    do_open_break_glass(acting_user=opener, case=world.case, reason_code="immediate_risk")
    client = Client()
    client.force_login(opener)
    html = client.get("/").content.decode()
    assert f'id="emergency-{world.case.pk}"' in html  # the emergency case, marked
    assert "Osei family" in html and f'id="emergency-{world.other_case.pk}"' not in html
    client.force_login(world.social_worker)  # on the team: not marked
    assert 'id="emergency-' not in client.get("/").content.decode()


def test_caseload_last_activity_ignores_sealed_notes(demo):
    case = demo.case()
    response = demo.client("probation").get("/")
    row = next(c for c in response.context["cases"] if c.pk == case.pk)
    sealed = demo.note(SEALED_TEXT)
    visible_latest = max(n.created_at for n in case.notes.filter(state="final")
                         .exclude(sensitivity="sealed"))
    assert row.last_activity == visible_latest
    assert row.last_activity != sealed.created_at


@pytest.mark.parametrize(("username", "heading", "links"), [
    ("ig.officer", "Information governance",
     ["audit:log_search", "audit:break_glass_queue", "audit:alerts", "audit:subject_access"]),
    ("admin", "Administration", ["admin:index"]),
])
def test_ig_officers_and_administrators_start_at_their_own_work_not_a_caseload(
        demo, username, heading, links):
    response = demo.client(username).get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<h1 class="govuk-heading-l">{heading}</h1>' in page
    assert "You have no caseload" in page
    assert "cases" not in response.context  # no caseload is read for them
    assert "Ashworth" not in page and "Begum" not in page
    main = page.split('id="main-content"', 1)[1]
    for name in links:
        assert f'href="{reverse(name)}"' in main
    nav = page.split('id="navigation"', 1)[1].split("</ul>", 1)[0]
    for practitioners_only in ("My caseload", "Search", "My actions"):
        assert practitioners_only not in nav


def test_ig_start_page_says_how_many_emergency_accesses_wait_for_review(demo):
    do_open_break_glass(acting_user=demo.user("early.help"), case=demo.case(),
                        reason_code="other", reason="Called by the police out of hours.")
    page = demo.client("ig.officer").get("/").content.decode()
    waiting = page.split('id="awaiting-review"', 1)[1].split("</div>", 1)[0]
    assert "1 use of emergency access is waiting for your review." in " ".join(waiting.split())
    assert f'href="{reverse("audit:break_glass_queue")}"' in waiting


def test_practitioners_keep_their_caseload_search_and_actions_in_the_menu(demo):
    page = demo.client("social.worker").get("/").content.decode()
    nav = page.split('id="navigation"', 1)[1].split("</ul>", 1)[0]
    assert all(item in nav for item in ("My caseload", "Search", "My actions"))
    assert '<h1 class="govuk-heading-l">My caseload</h1>' in page


def test_case_pages_are_never_cached(demo):
    client = demo.client("social.worker")
    for url in ["/", reverse("casenotes:case_detail", args=[demo.case().pk]), "/cases/999999/"]:
        assert client.get(url)["Cache-Control"] == "no-store"


# --- case page ------------------------------------------------------------------------

def test_case_page_shows_family_with_ages_and_team_with_roles(demo):
    case = demo.case()
    response = demo.client("social.worker").get(reverse("casenotes:case_detail", args=[case.pk]))
    html = response.content.decode()
    mia = case.people.get(full_name="Mia Ashworth")
    assert f"Mia Ashworth, {mia.age}" in html
    assert "Dean Carter (parent&#x27;s partner), 33" in html
    assert "Priya Shah" in html and "Probation officer, Probation" in html
    assert "Mental-health practitioner, Mental health" in html


def test_case_page_lists_notes_newest_first(demo):
    case = demo.case()
    response = demo.client("team.manager").get(reverse("casenotes:case_detail", args=[case.pk]))
    moments = [note.occurred_at for note, _full in response.context["entries"]]
    assert moments == sorted(moments, reverse=True)
    assert len(moments) >= 4


def test_agency_restricted_note_of_another_agency_is_a_placeholder(demo):
    case = demo.case()
    note = demo.note(PROBATION_TEXT)
    response = demo.client("mental.health").get(reverse("casenotes:case_detail", args=[case.pk]))
    html = response.content.decode()
    day = timezone.localtime(note.occurred_at)
    assert f"Restricted note — Probation, {day.day} {day:%b %Y}" in html
    assert PROBATION_TEXT not in html
    assert "Dean Carter" not in html.split("Case notes")[1].split(MH_TEXT)[0] or True
    assert reverse("casenotes:note_detail", args=[case.pk, note.pk]) not in html


def test_agency_restricted_note_is_readable_by_its_agency_and_the_team_manager(demo):
    case = demo.case()
    url = reverse("casenotes:case_detail", args=[case.pk])
    assert PROBATION_TEXT in demo.client("probation").get(url).content.decode()
    assert PROBATION_TEXT in demo.client("team.manager").get(url).content.decode()


def test_sealed_note_is_absent_for_people_not_named(demo):
    case = demo.case()
    sealed = demo.note(SEALED_TEXT)
    url = reverse("casenotes:case_detail", args=[case.pk])
    html = demo.client("probation").get(url).content.decode()
    assert SEALED_TEXT not in html
    assert f"note-{sealed.pk}" not in html
    assert "Restricted note — Domestic abuse" not in html
    assert SEALED_TEXT in demo.client("social.worker").get(url).content.decode()


def test_another_teams_case_is_not_found_and_the_attempt_is_audited(demo):
    other = demo.case("EH-25-0031")
    client = demo.client("social.worker")
    response = client.get(reverse("casenotes:case_detail", args=[other.pk]))
    missing = client.get(reverse("casenotes:case_detail", args=[987654]))
    assert response.status_code == 404 and missing.status_code == 404
    # Forbidden and missing look the same (bar the per-render CSRF mask).
    assert _without_csrf(response.content) == _without_csrf(missing.content)
    denied = AuditEvent.objects.get(action=AuditAction.ACCESS_DENIED, case_id=other.pk)
    assert denied.outcome == Outcome.DENIED
    assert denied.actor_id == demo.user("social.worker").pk


@pytest.mark.parametrize("username", ["ig.officer", "admin"])
def test_no_account_type_opens_a_case_without_a_relationship(demo, username):
    case = demo.case()
    response = demo.client(username).get(reverse("casenotes:case_detail", args=[case.pk]))
    assert response.status_code == 404
    assert demo.user("admin").is_superuser


def test_viewing_a_case_is_audited(demo):
    case = demo.case()
    demo.client("recovery").get(reverse("casenotes:case_detail", args=[case.pk]))
    event = AuditEvent.objects.get(action=AuditAction.CASE_VIEWED, case_id=case.pk)
    assert event.actor_label == "recovery"
    assert event.agency_label == "Open Door Recovery Service"
    assert event.role_label == "Recovery worker"
    assert event.request_id


def test_notes_filter_by_type_and_by_person(demo):
    case = demo.case()
    url = reverse("casenotes:case_detail", args=[case.pk])
    client = demo.client("team.manager")
    by_type = client.get(url, {"note_type": "home_visit"}).context["entries"]
    assert by_type and all(n.note_type == "home_visit" for n, _ in by_type)
    kerry = case.people.get(full_name="Kerry Ashworth")
    by_person = client.get(url, {"person": kerry.pk}).context["entries"]
    assert by_person and all(kerry in n.people.all() for n, _ in by_person)


def test_filters_never_reveal_what_a_placeholder_is_about(demo):
    case = demo.case()
    dean = case.people.get(full_name="Dean Carter")
    response = demo.client("mental.health").get(
        reverse("casenotes:case_detail", args=[case.pk]), {"person": dean.pk})
    assert response.context["entries"] == []
    assert "Restricted note" not in response.content.decode()


def test_bad_filter_values_get_a_clear_message(demo):
    case = demo.case()
    response = demo.client("team.manager").get(
        reverse("casenotes:case_detail", args=[case.pk]), {"note_type": "bogus", "person": "x"})
    assert response.status_code == 200
    assert "Choose a note type from the list." in _errors(response)


# --- recording a note -------------------------------------------------------------------

def test_recording_a_draft_then_finalising_it(demo):
    case = demo.case()
    client = demo.client("family.support")
    mia = case.people.get(full_name="Mia Ashworth")
    response = client.post(reverse("casenotes:note_create", args=[case.pk]),
                           _note_post(body="Took Mia to the park.", people=[mia.pk]))
    note = CaseNote.objects.get(body="Took Mia to the park.")
    assert response.status_code == 302 and note.state == "draft"
    assert list(note.people.all()) == [mia]
    assert note.author_agency.short_name == "Children's Services"
    edit = client.post(reverse("casenotes:note_edit", args=[case.pk, note.pk]),
                       _note_post(body="Took Mia to the park. She was happy.",
                                  version=note.version, intent="finalise"))
    note.refresh_from_db()
    assert edit.status_code == 302
    assert note.state == "final" and note.body.endswith("She was happy.")
    assert note.history.count() == 2
    assert note.history.first().history_user == demo.user("family.support")


def test_finalising_straight_from_the_form(demo):
    case = demo.case()
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="Visit done.", intent="finalise", is_significant="on"))
    note = CaseNote.objects.get(body="Visit done.")
    assert response.status_code == 302
    assert note.is_final and note.is_significant


BAD_INPUT = [
    ({"body": ""}, "Enter the note."),
    ({"body": "   \n  "}, "Enter the note."),
    ({"body": "x" * 20_001}, "The note must be 20,000 characters or fewer (it has 20001)."),
    ({"occurred_year": str(timezone.localdate().year + 1)},
     "The date and time this happened must be in the past."),
    ({"occurred_day": "31", "occurred_month": "2"}, "Enter a real date, for example 27 3 2026."),
    ({"occurred_time": "25:00"}, "Enter the time in 24-hour format, for example 14:30."),
    ({"note_type": "gossip"}, "Choose the type of note."),
    ({"sensitivity": "public"}, "Choose who may read this note."),
    ({"occurred_day": "99999999999999999999999"}, "Enter a real date, for example 27 3 2026."),
    # An id larger than any database can hold is a wrong choice, not a server error.
    ({"people": ["99999999999999999999999"]}, "Choose people from this family only."),
    ({"sensitivity": "sealed", "readers": ["-99999999999999999999999"]},
     "Named readers must be people working on this case."),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT)
def test_bad_note_input_gets_a_clear_message_saves_nothing_and_keeps_the_text(demo, overrides, message):
    case = demo.case()
    before = CaseNote.objects.count()
    typed = {"body": "Important words I typed"}
    typed.update(overrides)
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]), _note_post(**typed))
    assert response.status_code == 400
    assert message in _errors(response)
    assert CaseNote.objects.count() == before
    if typed["body"].strip() and len(typed["body"]) < 100:
        assert typed["body"] in response.content.decode()


def test_a_person_from_another_family_is_refused(demo):
    case = demo.case()
    stranger = demo.case("FS-24-0142").people.first()
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="About someone", people=[stranger.pk]))
    assert response.status_code == 400
    assert any("Choose people from this family only." in e for e in _errors(response))
    assert not CaseNote.objects.filter(body="About someone").exists()


def test_named_readers_on_a_standard_note_are_refused(demo):
    case = demo.case()
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="Readers?", readers=[demo.user("probation").pk]))
    assert response.status_code == 400
    assert any("only for sealed notes" in e for e in response.context["form"].errors["readers"])


def test_a_note_on_a_closed_case_is_refused_with_the_text_kept(demo):
    case = demo.case("FS-24-0142")
    do_close_case(acting_user=demo.user("team.manager"), case=case)
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]), _note_post(body="Late note"))
    assert response.status_code == 400
    assert "This case is closed" in response.content.decode()
    assert "Late note" in response.content.decode()
    assert not CaseNote.objects.filter(body="Late note").exists()


def test_unexpected_fields_change_nothing(demo):
    case = demo.case()
    demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="Mass assignment", author=demo.user("probation").pk, state="final",
                   version="99", case=demo.case("EH-25-0031").pk, author_agency=3))
    note = CaseNote.objects.get(body="Mass assignment")
    assert note.author == demo.user("social.worker")
    assert note.state == "draft" and note.version == 1 and note.case == case


def test_people_without_contribute_rights_cannot_open_the_note_form(demo):
    case = demo.case()
    for username in ["early.help", "ig.officer", "admin"]:
        response = demo.client(username).get(reverse("casenotes:note_create", args=[case.pk]))
        assert response.status_code == 404


# --- drafts, finalised notes and addenda --------------------------------------------------

def _draft_changed_in_another_tab(demo) -> tuple:
    """The social worker's draft, saved since from another tab: (case, draft as it was)."""
    case = demo.case()
    draft = demo.note("to finish after the meeting")
    do_update_draft(acting_user=demo.user("social.worker"), note=draft,
                    expected_version=draft.version, note_type=draft.note_type,
                    occurred_at=draft.occurred_at, body="Text saved in the other tab",
                    sensitivity="standard")
    return case, draft


def test_a_stale_draft_edit_is_refused_and_both_texts_are_shown(demo):
    case, draft = _draft_changed_in_another_tab(demo)
    response = demo.client("social.worker").post(
        reverse("casenotes:note_edit", args=[case.pk, draft.pk]),
        _note_post(body="Text typed in this tab", version=draft.version))
    html = response.content.decode()
    draft.refresh_from_db()
    assert response.status_code == 409
    assert "Text typed in this tab" in html and "Text saved in the other tab" in html
    assert draft.body == "Text saved in the other tab"
    assert f'name="version" value="{draft.version}"' in html


PAGE_KEY = "3c9e2a44-7b1d-4f0e-a6c2-5d8b9e1f0a37"


def test_a_form_sent_before_its_autosave_was_answered_edits_that_draft(demo):
    """The add-note page's autosave created the draft, but its reply had not come when
    the form was sent (to the add page, with the page's key): the form finalises that
    draft. There is one note, never a final note beside a stray draft."""
    case, author = demo.case(), demo.user("social.worker")
    draft = do_create_note(acting_user=author, case=case, note_type="home_visit",
                           occurred_at=timezone.now() - datetime.timedelta(hours=1),
                           body="First words", client_ref=PAGE_KEY)
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="First words, and the rest.", intent="finalise", client_ref=PAGE_KEY))
    assert response.status_code == 302
    assert response["Location"] == reverse("casenotes:note_detail", args=[case.pk, draft.pk])
    mine = CaseNote.objects.filter(author=author, body__startswith="First words")
    assert [(n.pk, n.state, n.body) for n in mine] == [
        (draft.pk, CaseNote.State.FINAL, "First words, and the rest.")]


def test_the_add_note_form_sent_twice_adds_one_note(demo):
    """Without JavaScript too: the page carries its own key, so the same form sent again
    (a retry after a timeout, a second click, a browser resending) shows the note saved
    the first time instead of adding a second, permanent one."""
    case = demo.case()
    client = demo.client("social.worker")
    page = client.get(reverse("casenotes:note_create", args=[case.pk])).content.decode()
    key = re.search(r'name="client_ref" value="([0-9a-f-]{36})"', page)[1]
    sent = _note_post(body="Sent twice (TWICE-6021).", intent="finalise", client_ref=key)
    first = client.post(reverse("casenotes:note_create", args=[case.pk]), sent)
    again = client.post(reverse("casenotes:note_create", args=[case.pk]), sent, follow=True)
    note = CaseNote.objects.get(body="Sent twice (TWICE-6021).")
    assert first["Location"] == again.redirect_chain[0][0] == reverse(
        "casenotes:note_detail", args=[case.pk, note.pk])
    assert "This note was already saved. It has not been added again." in again.content.decode()
    other = client.get(reverse("casenotes:note_create", args=[case.pk])).content.decode()
    assert key not in other  # each page its own key


def test_the_add_note_form_sent_twice_at_once_shows_the_note_the_first_saved(demo, monkeypatch):
    """The second arrives while the first is being saved: it finds no note, then its own
    insert meets the page's key; it is answered with the note saved, not "nothing was
    saved" (which would have the person type it again)."""
    from casenotes.views import notes as views

    case, author = demo.case(), demo.user("social.worker")
    first = do_create_note(acting_user=author, case=case, note_type="home_visit", finalise=True,
                           occurred_at=timezone.now() - datetime.timedelta(hours=1),
                           body="Saved by the first (AT-ONCE-17).", client_ref=PAGE_KEY)
    looked = []
    real = views._note_of_page

    def not_yet_the_first_time(*args):
        looked.append(args)
        return None if len(looked) == 1 else real(*args)

    monkeypatch.setattr(views, "_note_of_page", not_yet_the_first_time)
    response = demo.client("social.worker").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="Saved by the first (AT-ONCE-17).", intent="finalise", client_ref=PAGE_KEY))
    assert response.status_code == 302
    assert response["Location"] == reverse("casenotes:note_detail", args=[case.pk, first.pk])
    assert CaseNote.objects.filter(body__contains="AT-ONCE-17").count() == 1


def test_a_note_added_from_the_form_keeps_its_pages_key_and_ignores_a_misshapen_one(demo):
    """So an autosave of that page arriving late finds the note instead of adding a
    draft (tests/casenotes/test_consumers.py); a key of another shape is not kept."""
    case = demo.case()
    client = demo.client("social.worker")
    client.post(reverse("casenotes:note_create", args=[case.pk]),
                _note_post(body="Kept key", intent="finalise", client_ref=PAGE_KEY))
    client.post(reverse("casenotes:note_create", args=[case.pk]),
                _note_post(body="Odd key", intent="finalise", client_ref="x'; --"))
    assert CaseNote.objects.get(body="Kept key").client_ref == PAGE_KEY
    assert CaseNote.objects.get(body="Odd key").client_ref == ""


def test_a_stale_draft_edit_keeps_every_person_and_reader_ticked(demo):
    """The refused form comes back as it was sent: every ticked person and named
    reader, not only the last of each (the next save would drop the others)."""
    case, draft = _draft_changed_in_another_tab(demo)
    people = list(case.people.order_by("pk")[:2])
    readers = [demo.user("team.manager"), demo.user("probation")]
    response = demo.client("social.worker").post(
        reverse("casenotes:note_edit", args=[case.pk, draft.pk]),
        _note_post(body="Text typed in this tab", version=draft.version, sensitivity="sealed",
                   people=[p.pk for p in people], readers=[r.pk for r in readers]))
    assert response.status_code == 409
    form = response.context["form"]
    assert not form.has_error("people") and not form.has_error("readers")
    assert [p.pk for p in form.cleaned_data["people"]] == [p.pk for p in people]
    assert sorted(r.pk for r in form.cleaned_data["readers"]) == sorted(r.pk for r in readers)
    html = response.content.decode()
    for name, chosen in [("people", people), ("readers", readers)]:
        for item in chosen:
            assert f'name="{name}" type="checkbox" value="{item.pk}" checked' in html


@pytest.mark.parametrize("version", ["", "abc", "0", str(2**31), "99999999999999999999999"])
def test_a_draft_edit_of_a_version_no_page_showed_asks_for_a_reload_and_saves_nothing(demo, version):
    case = demo.case()
    draft = demo.note("to finish after the meeting")
    response = demo.client("social.worker").post(
        reverse("casenotes:note_edit", args=[case.pk, draft.pk]),
        _note_post(body="Text typed in this tab", version=version))
    html = response.content.decode()
    assert response.status_code == 400
    summary = html[html.index("govuk-error-summary__list"):html.index("</ul>", html.index(
        "govuk-error-summary__list"))]
    assert "Reload the page and make your changes again." in summary
    assert "Ensure this value" not in html  # one message a person can act on
    assert "Text typed in this tab" in html
    assert CaseNote.objects.get(pk=draft.pk).body == draft.body


def test_editing_a_finalised_note_explains_that_it_cannot_change(demo):
    case = demo.case()
    note = demo.note("Core group")
    client = demo.client("social.worker")
    response = client.get(reverse("casenotes:note_edit", args=[case.pk, note.pk]), follow=True)
    assert "can no longer be changed" in response.content.decode()
    posted = client.post(reverse("casenotes:note_edit", args=[case.pk, note.pk]),
                         _note_post(body="Rewriting history", version=note.version))
    note.refresh_from_db()
    assert posted.status_code == 400
    assert "can no longer be changed" in posted.content.decode()
    assert "Rewriting history" in posted.content.decode()
    assert "Rewriting history" not in note.body


def test_a_second_finalise_is_refused(demo):
    case = demo.case()
    draft = demo.note("to finish after the meeting")
    client = demo.client("social.worker")
    first = client.post(reverse("casenotes:note_edit", args=[case.pk, draft.pk]),
                        _note_post(body="Final words", version=draft.version, intent="finalise"))
    second = client.post(reverse("casenotes:note_edit", args=[case.pk, draft.pk]),
                         _note_post(body="Final words again", version=draft.version + 1,
                                    intent="finalise"))
    draft.refresh_from_db()
    assert first.status_code == 302 and second.status_code == 400
    assert draft.body == "Final words"
    assert AuditEvent.objects.filter(action=AuditAction.NOTE_FINALISED, object_id=str(draft.pk)).count() == 1


def test_someone_elses_draft_is_not_found(demo):
    case = demo.case()
    draft = demo.note("to finish after the meeting")
    client = demo.client("team.manager")
    assert client.get(reverse("casenotes:note_detail", args=[case.pk, draft.pk])).status_code == 404
    assert client.get(reverse("casenotes:note_edit", args=[case.pk, draft.pk])).status_code == 404
    assert "to finish after the meeting" not in client.get(
        reverse("casenotes:case_detail", args=[case.pk])).content.decode()


def test_note_detail_shows_the_note_and_its_addenda(demo):
    case = demo.case()
    note = demo.note("Announced home visit")
    client = demo.client("mental.health")
    response = client.post(reverse("casenotes:addendum_create", args=[case.pk, note.pk]),
                           {"body": "Correction: Leo was also seen alone."})
    assert response.status_code == 302
    page = client.get(reverse("casenotes:note_detail", args=[case.pk, note.pk])).content.decode()
    assert "Announced home visit" in page and "Correction: Leo was also seen alone." in page
    assert Addendum.objects.get(note=note).author == demo.user("mental.health")
    assert AuditEvent.objects.filter(action=AuditAction.NOTE_VIEWED, object_id=str(note.pk)).exists()


def test_an_addendum_form_sent_twice_adds_one_addendum(demo):
    """An addendum is part of the legal record and is never removed: the note page's
    form carries its own key, so the same form sent again (a retry after a timeout, a
    resend, no JavaScript to stop a second click) adds nothing and says so."""
    case = demo.case()
    note = demo.note("Announced home visit")
    client = demo.client("social.worker")
    url = reverse("casenotes:note_detail", args=[case.pk, note.pk])
    page = client.get(url).content.decode()
    key = re.search(r'name="client_ref" value="([0-9a-f-]{36})"', page)[1]
    sent = {"body": "Correction: Leo was seen alone (ONCE-2231).", "client_ref": key}
    first = client.post(reverse("casenotes:addendum_create", args=[case.pk, note.pk]), sent)
    again = client.post(reverse("casenotes:addendum_create", args=[case.pk, note.pk]), sent,
                        follow=True)
    assert first["Location"] == url and again.redirect_chain == [(url, 302)]
    assert "This addendum was already added. It has not been added again." in again.content.decode()
    assert Addendum.objects.filter(note=note).count() == 1
    assert key not in client.get(url).content.decode()  # the next addendum, a new key


def test_an_empty_addendum_gets_a_clear_message(demo):
    case = demo.case()
    note = demo.note("Announced home visit")
    response = demo.client("social.worker").post(
        reverse("casenotes:addendum_create", args=[case.pk, note.pk]), {"body": "  "})
    assert response.status_code == 400
    assert "Enter the addendum." in _errors(response)
    assert not Addendum.objects.exists()


def test_placeholder_and_sealed_notes_cannot_be_opened_or_amended(demo):
    case = demo.case()
    client = demo.client("mental.health")
    for fragment in [PROBATION_TEXT, SEALED_TEXT]:
        note = demo.note(fragment)
        assert client.get(reverse("casenotes:note_detail", args=[case.pk, note.pk])).status_code == 404
        amend = client.post(reverse("casenotes:addendum_create", args=[case.pk, note.pk]),
                            {"body": "sneaky"})
        assert amend.status_code == 404
    assert not Addendum.objects.exists()


def test_a_named_reader_opens_a_sealed_note(demo):
    case = demo.case()
    note = demo.note(SEALED_TEXT)
    response = demo.client("team.manager").get(reverse("casenotes:note_detail", args=[case.pk, note.pk]))
    assert response.status_code == 200 and SEALED_TEXT in response.content.decode()


def test_sealed_notes_are_created_with_named_readers(demo):
    case = demo.case()
    response = demo.client("da.victim").post(
        reverse("casenotes:note_create", args=[case.pk]),
        _note_post(body="New address held here.", sensitivity="sealed",
                   readers=[demo.user("social.worker").pk], intent="finalise"))
    note = CaseNote.objects.get(body="New address held here.")
    assert response.status_code == 302
    assert list(note.readers.all()) == [demo.user("social.worker")]
    url = reverse("casenotes:case_detail", args=[case.pk])
    assert "New address held here." in demo.client("social.worker").get(url).content.decode()
    assert "New address held here." not in demo.client("team.manager").get(url).content.decode()


def test_ended_membership_loses_access_on_the_next_request(demo):
    from teams.actions import do_end_membership

    case = demo.case()
    client = demo.client("probation")
    url = reverse("casenotes:case_detail", args=[case.pk])
    assert client.get(url).status_code == 200
    membership = demo.user("probation").memberships.get()
    do_end_membership(acting_user=demo.user("admin"), membership=membership)
    assert client.get(url).status_code == 404
    assert "Ashworth" not in client.get("/").content.decode()


def test_note_written_in_a_draft_by_the_action_shows_for_its_author_only(demo):
    case = demo.case()
    do_create_note(acting_user=demo.user("probation"), case=case, note_type="phone_call",
                   occurred_at=timezone.now(), body="Probation draft")
    url = reverse("casenotes:case_detail", args=[case.pk])
    assert "Probation draft" in demo.client("probation").get(url).content.decode()
    assert "Probation draft" not in demo.client("team.manager").get(url).content.decode()


def test_opening_the_note_form_is_audited(demo):
    case = demo.case()
    demo.client("social.worker").get(reverse("casenotes:note_create", args=[case.pk]))
    event = AuditEvent.objects.get(action=AuditAction.NOTE_FORM_VIEWED)
    assert event.case_id == case.pk and event.actor_label == "social.worker"


def test_the_note_form_names_who_else_in_the_team_reads_the_writers_agency_restricted_notes(world):
    from django.test import Client

    victim_worker = world.user(Role.DA_VICTIM_WORKER)
    perpetrator_worker = world.user(Role.DA_PERPETRATOR_WORKER)
    client = Client()
    client.force_login(victim_worker)
    html = client.get(reverse("casenotes:note_create", args=[world.case.pk])).content.decode()
    hint = html.split('id="id_sensitivity_1-hint"', 1)[1].split("</div>", 1)[0]
    assert "your agency also includes" in hint
    assert f"{perpetrator_worker.get_full_name()} (domestic-abuse perpetrator worker)" in hint
    assert victim_worker.get_full_name() not in hint
    # Another agency's writer is told of their own colleagues only.
    client.force_login(world.user(Role.PROBATION_OFFICER))
    html = client.get(reverse("casenotes:note_create", args=[world.case.pk])).content.decode()
    hint = html.split('id="id_sensitivity_1-hint"', 1)[1].split("</div>", 1)[0]
    assert perpetrator_worker.get_full_name() not in hint


def test_the_note_form_reads_the_case_teams_members_once_for_its_readers_and_its_hint(world):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(world.social_worker)
    url = reverse("casenotes:note_create", args=[world.case.pk])
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    # The team's members with their accounts (the sealed-note readers, and the colleagues
    # of the writer's agency named under "Agency-restricted"): one query for both.
    members = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith('SELECT "teams_membership"."id"')
               and f'"teams_membership"."team_id" = {world.case.allocated_team_id}' in q["sql"]]
    assert len(members) == 1
    colleague = world.user(Role.SOCIAL_WORKER, 1)
    hint = page.split("your agency also includes ", 1)[1].split("</div>", 1)[0]
    assert f"{colleague.get_full_name()} (social worker)" in hint
    assert f'value="{colleague.pk}"' in page  # a reader a sealed note can be shared with


def test_the_caseload_counts_notes_others_finalised_since_the_person_last_opened_the_case(
        world, settings):
    from django.test import Client

    settings.CASE_NOTES_PER_PAGE = 2
    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    client = Client()
    client.force_login(worker)
    case_url = reverse("casenotes:case_detail", args=[world.case.pk])

    def tag() -> str:
        html = client.get("/").content.decode()
        found = re.search(rf'id="(new|unopened)-{world.case.pk}">([^<]+)<', html)
        return found.group(2) if found else ""

    assert tag() == "Not opened yet"
    client.get(case_url)
    assert tag() == ""
    world.standard_note(probation)
    world.restricted_note(probation)  # a placeholder to the worker: still something new
    world.sealed_note(probation)  # its timing is its own: not counted
    world.standard_note(worker)  # their own: not new to them
    draft = world.draft(world.user(Role.MENTAL_HEALTH_PRACTITIONER))
    assert tag() == "2 new notes"
    do_finalise_note(acting_user=draft.author, note=draft, expected_version=draft.version)
    assert tag() == "3 new notes"  # counted from when it was finalised, not begun
    # A filtered list, or an older page, does not show the newest notes: still new.
    client.get(case_url, {"note_type": CaseNote.NoteType.PHONE_CALL})
    client.get(case_url, {"page": 2})
    assert tag() == "3 new notes"
    client.get(case_url)
    assert tag() == ""
    # Another person's reading position is their own.
    client.force_login(probation)
    assert tag() == "Not opened yet"


def test_the_author_shares_and_unshares_a_sealed_note_from_its_readers_page(world):
    from django.test import Client

    author, reader = world.user(Role.DA_VICTIM_WORKER), world.social_worker
    note = world.sealed_note(author, body=f"The {SEALED_TEXT} is in another county.")
    url = reverse("casenotes:note_readers", args=[world.case.pk, note.pk])
    client = Client()
    client.force_login(author)  # request.user as a page sees it (a lazy object)
    response = client.post(url, {"readers": [str(reader.pk)]}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("casenotes:note_detail",
                                                     args=[world.case.pk, note.pk])
    assert "Named readers saved." in response.content.decode()
    assert list(note.readers.all()) == [reader]
    shared = AuditEvent.objects.filter(action=AuditAction.SEALED_SHARED).latest("id")
    assert (shared.actor_id, shared.reason) == (author.pk, f"with {reader.username}")
    reader_client = Client()
    reader_client.force_login(reader)
    assert SEALED_TEXT in reader_client.get(
        reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()

    assert client.post(url, {}).status_code == 302
    assert list(note.readers.all()) == []
    unshared = AuditEvent.objects.filter(action=AuditAction.SEALED_UNSHARED).latest("id")
    assert unshared.reason == f"from {reader.username}"


def _logged_in(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_a_case_handed_over_is_marked_read_only_on_the_old_teams_caseload(world):
    transfer = do_request_transfer(acting_user=world.team_manager, case=world.case,
                                   to_team=world.locality_team, reason="Stepping down.")
    do_decide_transfer(acting_user=world.locality_users[Role.TEAM_MANAGER], transfer=transfer,
                       accept=True, reason="Agreed at the step-down meeting.")
    assert f'id="read-only-{world.case.pk}"' in _logged_in(world.social_worker).get("/").content.decode()
    receiving = _logged_in(world.locality_users[Role.SOCIAL_WORKER]).get("/").content.decode()
    assert world.case.reference in receiving and 'id="read-only-' not in receiving


def test_the_menu_marks_my_caseload_as_the_current_page_on_the_caseload(world):
    html = _logged_in(world.social_worker).get("/").content.decode()
    assert 'href="/" aria-current="page">My caseload</a>' in html
    html = _logged_in(world.social_worker).get(reverse("casenotes:search")).content.decode()
    assert 'href="/" aria-current="page">' not in html


def test_a_note_dated_in_the_future_marks_its_date_and_its_time(world):
    tomorrow = timezone.localtime() + datetime.timedelta(days=1)
    response = _logged_in(world.social_worker).post(
        reverse("casenotes:note_create", args=[world.case.pk]),
        _note_post(occurred_day=str(tomorrow.day), occurred_month=str(tomorrow.month),
                   occurred_year=str(tomorrow.year)))
    html = response.content.decode()
    assert response.status_code == 400
    assert "The date and time this happened must be in the past." in _errors(response)
    for name in ("occurred_day", "occurred_month", "occurred_year", "occurred_time"):
        tag = re.search(rf'<input [^>]*name="{name}"[^>]*>', html).group(0)
        assert "govuk-input--error" in tag, name
    assert not CaseNote.objects.filter(case=world.case).exists()


def test_finalising_a_sealed_note_no_one_else_may_read_says_so(world):
    client = _logged_in(world.social_worker)
    url = reverse("casenotes:note_create", args=[world.case.pk])
    page = client.post(url, _note_post(sensitivity="sealed", intent="finalise"),
                       follow=True).content.decode()
    assert "Note finalised." in page
    assert "Only you can read this sealed note." in page
    named = client.post(url, _note_post(sensitivity="sealed", intent="finalise",
                                        readers=[str(world.team_manager.pk)]),
                        follow=True).content.decode()
    assert "Note finalised." in named and "Only you can read this sealed note." not in named


def test_a_note_finalised_while_the_case_page_is_read_is_still_new_afterwards(world, monkeypatch):
    from casenotes.views import notes as note_views

    worker, probation = world.social_worker, world.user(Role.PROBATION_OFFICER)
    draft = world.draft(probation)
    client = _logged_in(worker)
    read = note_views.selectors.case_page

    def finalised_meanwhile(*args, **kwargs):
        page = read(*args, **kwargs)  # the notes shown are read...
        do_finalise_note(acting_user=probation, note=draft, expected_version=draft.version)
        return page  # ...and the note is finalised before the page answers

    monkeypatch.setattr(note_views.selectors, "case_page", finalised_meanwhile)
    page = client.get(reverse("casenotes:case_detail", args=[world.case.pk])).content.decode()
    assert f'id="note-{draft.pk}"' not in page  # it was not on the page
    monkeypatch.undo()
    caseload = client.get("/").content.decode()
    assert re.search(rf'id="new-{world.case.pk}">1 new note<', caseload), "not counted as new"
