"""No entry, no read: every page that reads case data (or the access log) writes its
audit entry before it answers, so when that entry cannot be written the page answers
with an error and shows none of what it would have shown. The case room's replay is
the same over the socket: a replayed note whose delivery entry cannot be written is
not sent; so is the group case discussion room's resume, which sends the record as it
stands: no entry, no record.

The fault is put in the one place every entry is written, `audit.actions._write` (the
INSERT behind `record` and `record_many`), and only after the page has been shown once
without it: that first answer proves the page does show the data the faulty one must
not. The tests are transactional, as pages run in production (no transaction around
the request): a view that caught the failed write and went on rendering would render
here too, instead of tripping over a test transaction the failure had broken.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import actions as audit_actions
from casenotes.actions import do_add_addendum, do_open_break_glass, do_request_transfer
from discussions import actions as discussion_actions
from discussions.models import Section
from teams.models import Role
from tests.casenotes.rooms import live_layer_fixture, rooms_fixture  # noqa: F401
from tests.discussions.conftest import schedule
from tests.discussions.test_consumers import Rooms as DiscussionRooms
from tests.helpers import AuditWatch

pytestmark = pytest.mark.django_db(transaction=True)

NOTE_BODY = "Ellie showed the worker her new reading book (visit marker R-8821)."
ADDENDUM_BODY = "Addendum: the school confirmed attendance (marker R-8822)."
DRAFT_BODY = "Draft: Tom was asleep when the worker called (marker R-8823)."
SECTION_TEXT = "Worry raised at the discussion: rent arrears (marker R-8824)."
AGREED_ACTION = "Book a family group conference (marker R-8825)"
EMERGENCY_REASON = "Police called about the children overnight (marker R-8826)."
SAR_REFERENCE = "SAR-2026-0917"


def _store_down(events):
    raise DatabaseError("the audit table cannot be written")


@dataclass
class Read:
    """One page read: who asks, what, and the case data the answer shows."""

    user: object
    url: str
    shows: list[str]
    post: dict | None = None
    query: dict = field(default_factory=dict)

    def fetch(self, client: Client):
        if self.post is not None:
            return client.post(self.url, self.post)
        return client.get(self.url, self.query)


def _note(world):
    note = world.standard_note(world.social_worker, body=NOTE_BODY,
                               people=[world.people["ellie"]])
    do_add_addendum(acting_user=world.social_worker, note=note, body=ADDENDUM_BODY)
    return note


def _case_url(name, world, *args):
    return reverse(f"casenotes:{name}", args=[world.case.pk, *args])


def _read_by_a_practitioner(world):
    """A practitioner opens the case: the entry the IG pages then find."""
    _note(world)
    reader = Client()
    reader.force_login(world.social_worker)
    assert reader.get(_case_url("case_detail", world)).status_code == 200
    return world.social_worker.get_username()


def _emergency_access(world):
    opener = world.locality_users[Role.SOCIAL_WORKER]
    grant = do_open_break_glass(acting_user=opener, case=world.case, reason_code="other",
                                reason=EMERGENCY_REASON)
    return opener, grant


def _started_discussion(world):
    discussion = schedule(world)
    discussion = discussion_actions.do_start_discussion(acting_user=world.team_manager,
                                                        discussion=discussion)
    worries = Section.objects.get(item__discussion=discussion, kind=Section.Kind.WORRIES)
    discussion_actions.do_save_section(acting_user=world.social_worker, section=worries,
                                       text=SECTION_TEXT, version=1)
    return discussion


# --- the pages -------------------------------------------------------------------------------
# Each builds what its page shows and returns the read.

def caseload(world):
    return Read(world.social_worker, reverse("casenotes:caseload"),
                [world.case.reference, "Harper"])


def search_results(world):
    return Read(world.social_worker, reverse("casenotes:search"),
                ["Ellie Harper", "Kayleigh Harper", world.case.reference], query={"q": "Harper"})


def case_page(world):
    _note(world)
    return Read(world.social_worker, _case_url("case_detail", world),
                [NOTE_BODY, "Ellie Harper", "Kayleigh Harper", world.case.reference])


def note_detail(world):
    note = _note(world)
    return Read(world.social_worker, _case_url("note_detail", world, note.pk),
                [NOTE_BODY, ADDENDUM_BODY, "Ellie Harper"])


def note_history(world):
    note = _note(world)
    return Read(world.social_worker, _case_url("note_history", world, note.pk),
                [NOTE_BODY, "Ellie Harper"])


def note_form(world):
    return Read(world.social_worker, _case_url("note_create", world),
                ["Ellie Harper", "Dean Walsh"])


def draft_edit_form(world):
    draft = world.draft(world.social_worker, body=DRAFT_BODY)
    return Read(world.social_worker, _case_url("note_edit", world, draft.pk), [DRAFT_BODY])


def case_record_export(world):
    _note(world)
    return Read(world.social_worker, _case_url("case_export", world), [NOTE_BODY])


def case_history(world):
    return Read(world.social_worker, _case_url("case_history", world),
                ["Ellie Harper", "Dean Walsh"])


def case_access_list(world):
    opener, _ = _emergency_access(world)
    return Read(world.team_manager, _case_url("case_access", world),
                [opener.get_full_name(), EMERGENCY_REASON])


def transfer_requests(world):
    do_request_transfer(acting_user=world.team_manager, case=world.case,
                        to_team=world.locality_team, reason="Risk has fallen.")
    return Read(world.locality_users[Role.TEAM_MANAGER], reverse("casenotes:transfer_list"),
                [world.case.reference, "Harper"])


def transfer_decision_page(world):
    transfer = do_request_transfer(acting_user=world.team_manager, case=world.case,
                                   to_team=world.locality_team, reason="Risk has fallen.")
    return Read(world.locality_users[Role.TEAM_MANAGER],
                reverse("casenotes:transfer_decide", args=[transfer.pk]),
                [world.case.reference, "Harper"])


def team_page(world):
    return Read(world.social_worker, reverse("teams:team_detail", args=[world.fs_team.pk]),
                [world.case.reference, "Harper"])


def discussion_room(world):
    discussion = _started_discussion(world)
    return Read(world.social_worker, reverse("discussions:room", args=[discussion.pk]),
                [SECTION_TEXT, "Ellie Harper"])


def discussion_record_history(world):
    discussion = _started_discussion(world)
    return Read(world.social_worker, reverse("discussions:history", args=[discussion.pk]),
                [SECTION_TEXT])


def my_actions(world):
    discussion = _started_discussion(world)
    item = discussion.items.get()
    decision = Section.objects.get(item=item, kind=Section.Kind.DECISION)
    discussion_actions.do_save_section(acting_user=world.team_manager, section=decision,
                                       text="Continue the plan.", version=1)
    discussion_actions.do_add_action(acting_user=world.team_manager, item=item,
                                     owner=world.social_worker, description=AGREED_ACTION,
                                     due_on=timezone.localdate() + datetime.timedelta(days=7))
    discussion_actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    return Read(world.social_worker, reverse("discussions:my_actions"),
                [AGREED_ACTION, world.case.reference])


def ig_access_log_search(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:log_search"), [reader],
                query={"case": world.case.reference})


def ig_access_log_csv_export(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:log_search"), [reader],
                query={"case": world.case.reference, "format": "csv"})


def ig_subject_access_request(world):
    _note(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:subject_access"),
                [NOTE_BODY, ADDENDUM_BODY, "Ellie Harper", world.case.reference],
                post={"person": world.people["ellie"].pk, "reference": SAR_REFERENCE,
                      "format": "html"})


def ig_subject_access_search(world):
    return Read(world.user(Role.IG_OFFICER), reverse("audit:subject_access"),
                ["Ellie Harper", world.case.reference], query={"q": "Harper"})


def ig_subject_access_request_json(world):
    read = ig_subject_access_request(world)
    read.post["format"] = "json"
    return read


def ig_case_report(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:case_report", args=[world.case.pk]),
                [reader, world.case.reference])


def ig_user_report(world):
    _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER),
                reverse("audit:user_report", args=[world.social_worker.pk]),
                [world.case.reference])


def ig_alerts(world):
    opener, _ = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:alerts"),
                [opener.get_username(), EMERGENCY_REASON])


def ig_emergency_access_queue(world):
    opener, _ = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:break_glass_queue"),
                [opener.get_username(), world.case.reference, EMERGENCY_REASON])


def ig_emergency_access_review(world):
    opener, grant = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER),
                reverse("audit:break_glass_review", args=[grant.pk]),
                [opener.get_full_name(), world.case.reference, EMERGENCY_REASON])


READS = [caseload, search_results, case_page, note_detail, note_history, note_form,
         draft_edit_form, case_record_export, case_history, case_access_list,
         transfer_requests, transfer_decision_page, team_page, discussion_room,
         discussion_record_history, my_actions, ig_access_log_search, ig_access_log_csv_export,
         ig_subject_access_search, ig_subject_access_request, ig_subject_access_request_json,
         ig_case_report,
         ig_user_report, ig_alerts, ig_emergency_access_queue, ig_emergency_access_review]


@pytest.mark.parametrize("page", READS, ids=[read.__name__ for read in READS])
def test_a_read_whose_audit_entry_cannot_be_written_fails_and_shows_no_case_data(
        world, page, monkeypatch):
    read = page(world)
    client = Client(raise_request_exception=False)
    client.force_login(read.user)

    shown = read.fetch(client)
    assert shown.status_code == 200
    text = shown.content.decode()
    assert [marker for marker in read.shows if marker not in text] == []

    watch = AuditWatch()
    monkeypatch.setattr(audit_actions, "_write", _store_down)
    refused = read.fetch(client)
    monkeypatch.undo()

    assert 500 <= refused.status_code < 600
    text = refused.content.decode()
    assert [marker for marker in read.shows if marker in text] == []
    assert "attachment" not in refused.get("Content-Disposition", "")
    assert watch.new() == []  # and nothing else was written in its place


# --- the live rooms: the case room's replay, the discussion room's resume -----------------------

async def test_a_replay_whose_delivery_entries_cannot_be_written_sends_no_note(
        world, rooms, monkeypatch):
    viewer = world.user(Role.FAMILY_SUPPORT_WORKER)
    note = await database_sync_to_async(_note)(world)
    tab = await rooms.open(world.case.pk, viewer, after=None)

    monkeypatch.setattr(audit_actions, "_write", _store_down)
    replayed, synced = await tab.resume(0)
    monkeypatch.undo()
    assert [frame for frame in replayed if frame.get("note") == note.pk] == []
    assert NOTE_BODY not in str(replayed)
    assert synced["type"] == "synced"

    # The same replay, once entries can be written, does send it.
    replayed, _ = await tab.resume(0)
    assert note.pk in {frame.get("note") for frame in replayed}
    assert NOTE_BODY in str(replayed)


@pytest.fixture
async def discussion_rooms(world, live_layer):
    opened = DiscussionRooms()
    yield opened
    await opened.close_all()


async def test_a_discussion_resume_whose_audit_entry_cannot_be_written_sends_no_record(
        world, discussion_rooms, monkeypatch):
    discussion = await database_sync_to_async(_started_discussion)(world)
    tab = await discussion_rooms.open(discussion.pk, world.social_worker, resume=False)

    monkeypatch.setattr(audit_actions, "_write", _store_down)
    await tab.send({"type": "resume", "after": 0})
    refused = await tab.frame()
    monkeypatch.undo()
    assert refused["type"] == "error"
    assert SECTION_TEXT not in str(refused)
    await tab.assert_nothing()  # no state, no synced

    # The same resume, once its entry can be written, sends the record.
    state = await tab.resume()
    assert SECTION_TEXT in str(state)
