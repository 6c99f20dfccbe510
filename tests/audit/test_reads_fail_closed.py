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

A page that shows case data only when it refuses what was posted (an action whose bad
input re-shows the room, the access list or the note) is read that way: the same
refused POST, answered 400 with the data, then 5xx without it.

Every named URL of the project is either such a read (each builder declares its URL
name, and the test checks that the read's URL resolves to it) or exempt in NOT_READS
with its reason; a page that is neither, or an entry naming a page that is gone, fails
`test_every_page_is_a_proven_read_or_exempt_with_a_reason`. The exemption is checked,
not trusted: each exempt page is asked for (and posted to) by someone on the case, with
the case full of what the reads show, and must answer as it should with none of it.
"""

from __future__ import annotations

import datetime
import html
import re
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async
from django.contrib.messages import get_messages
from django.db import DatabaseError
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from audit import actions as audit_actions
from casenotes.actions import (
    do_add_addendum,
    do_add_keyworker,
    do_open_break_glass,
    do_request_transfer,
)
from casenotes.models import Case, Person
from discussions import actions as discussion_actions
from discussions.models import Section
from teams.models import Role
from tests.casenotes.rooms import live_layer_fixture, rooms_fixture  # noqa: F401
from tests.discussions.conftest import schedule
from tests.discussions.test_consumers import Rooms as DiscussionRooms
from tests.factories import PASSWORD
from tests.helpers import AuditWatch
from tests.teams.test_two_factor import enrol

pytestmark = pytest.mark.django_db(transaction=True)

NOTE_BODY = "Ellie showed the worker her new reading book (visit marker R-8821)."
ADDENDUM_BODY = "Addendum: the school confirmed attendance (marker R-8822)."
DRAFT_BODY = "Draft: Tom was asleep when the worker called (marker R-8823)."
SECTION_TEXT = "Worry raised at the discussion: rent arrears (marker R-8824)."
AGREED_ACTION = "Book a family group conference (marker R-8825)"
EMERGENCY_REASON = "Police called about the children overnight (marker R-8826)."
SAR_REFERENCE = "SAR-2026-0917"
TRANSFER_REASON = "Risk has fallen since the plan began (marker R-8827)."


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
    status: int = 200  # 400: a refused POST that re-shows the page

    def fetch(self, client: Client):
        if self.post is not None:
            return client.post(self.url, self.post)
        return client.get(self.url, self.query)


#: Every page builder, in the order written; each is marked with `reads`.
READS = []


def reads(url_name):
    """Declare the URL name a builder's read fetches (checked against the URL it builds)
    and list the builder in READS."""
    def declare(build):
        build.url_name = url_name
        READS.append(build)
        return build
    return declare


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


def _signed_off_discussion(world):
    """A signed-off discussion with one action agreed for the social worker."""
    discussion = _started_discussion(world)
    item = discussion.items.get()
    decision = Section.objects.get(item=item, kind=Section.Kind.DECISION)
    discussion_actions.do_save_section(acting_user=world.team_manager, section=decision,
                                       text="Continue the plan.", version=1)
    agreed = discussion_actions.do_add_action(
        acting_user=world.team_manager, item=item, owner=world.social_worker,
        description=AGREED_ACTION, due_on=timezone.localdate() + datetime.timedelta(days=7))
    discussion_actions.do_sign_off(acting_user=world.team_manager, discussion=discussion)
    return discussion, agreed


# --- the pages -------------------------------------------------------------------------------
# Each builds what its page shows and returns the read.

@reads("casenotes:caseload")
def caseload(world):
    return Read(world.social_worker, reverse("casenotes:caseload"),
                [world.case.reference, "Harper"])


@reads("casenotes:search")
def search_results(world):
    return Read(world.social_worker, reverse("casenotes:search"),
                ["Ellie Harper", "Kayleigh Harper", world.case.reference], query={"q": "Harper"})


@reads("casenotes:case_detail")
def case_page(world):
    _note(world)
    return Read(world.social_worker, _case_url("case_detail", world),
                [NOTE_BODY, "Ellie Harper", "Kayleigh Harper", world.case.reference])


@reads("casenotes:note_detail")
def note_detail(world):
    note = _note(world)
    return Read(world.social_worker, _case_url("note_detail", world, note.pk),
                [NOTE_BODY, ADDENDUM_BODY, "Ellie Harper"])


@reads("casenotes:note_history")
def note_history(world):
    note = _note(world)
    return Read(world.social_worker, _case_url("note_history", world, note.pk),
                [NOTE_BODY, "Ellie Harper"])


@reads("casenotes:note_create")
def note_form(world):
    return Read(world.social_worker, _case_url("note_create", world),
                ["Ellie Harper", "Dean Walsh"])


@reads("casenotes:note_edit")
def draft_edit_form(world):
    draft = world.draft(world.social_worker, body=DRAFT_BODY)
    return Read(world.social_worker, _case_url("note_edit", world, draft.pk), [DRAFT_BODY])


@reads("casenotes:case_export")
def case_record_export(world):
    _note(world)
    return Read(world.social_worker, _case_url("case_export", world), [NOTE_BODY])


@reads("casenotes:case_history")
def case_history(world):
    return Read(world.social_worker, _case_url("case_history", world),
                ["Ellie Harper", "Dean Walsh"])


@reads("casenotes:chronology")
def chronology(world):
    world.standard_note(world.social_worker, body=NOTE_BODY, is_significant=True)
    return Read(world.social_worker, _case_url("chronology", world), [NOTE_BODY, "Ellie Harper"])


@reads("casenotes:chronology_export")
def chronology_export(world):
    world.standard_note(world.social_worker, body=NOTE_BODY, is_significant=True)
    return Read(world.social_worker, _case_url("chronology_export", world), [NOTE_BODY])


@reads("casenotes:case_access")
def case_access_list(world):
    opener, _ = _emergency_access(world)
    return Read(world.team_manager, _case_url("case_access", world),
                [opener.get_full_name(), EMERGENCY_REASON])


@reads("casenotes:transfer_list")
def transfer_requests(world):
    do_request_transfer(acting_user=world.team_manager, case=world.case,
                        to_team=world.locality_team, reason=TRANSFER_REASON)
    return Read(world.locality_users[Role.TEAM_MANAGER], reverse("casenotes:transfer_list"),
                [world.case.reference, "Harper"])


@reads("casenotes:transfer_decide")
def transfer_decision_page(world):
    transfer = do_request_transfer(acting_user=world.team_manager, case=world.case,
                                   to_team=world.locality_team, reason=TRANSFER_REASON)
    return Read(world.locality_users[Role.TEAM_MANAGER],
                reverse("casenotes:transfer_decide", args=[transfer.pk]),
                [world.case.reference, "Harper"])


@reads("teams:team_detail")
def team_page(world):
    return Read(world.social_worker, reverse("teams:team_detail", args=[world.fs_team.pk]),
                [world.case.reference, "Harper"])


@reads("discussions:room")
def discussion_room(world):
    discussion = _started_discussion(world)
    return Read(world.social_worker, reverse("discussions:room", args=[discussion.pk]),
                [SECTION_TEXT, "Ellie Harper"])


@reads("discussions:history")
def discussion_record_history(world):
    discussion = _started_discussion(world)
    return Read(world.social_worker, reverse("discussions:history", args=[discussion.pk]),
                [SECTION_TEXT])


@reads("discussions:my_actions")
def my_actions(world):
    _signed_off_discussion(world)
    return Read(world.social_worker, reverse("discussions:my_actions"),
                [AGREED_ACTION, world.case.reference])


@reads("audit:log_search")
def ig_access_log_search(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:log_search"), [reader],
                query={"case": world.case.reference})


@reads("audit:log_search")
def ig_access_log_csv_export(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:log_search"), [reader],
                query={"case": world.case.reference, "format": "csv"})


@reads("audit:subject_access")
def ig_subject_access_request(world):
    _note(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:subject_access"),
                [NOTE_BODY, ADDENDUM_BODY, "Ellie Harper", world.case.reference],
                post={"person": world.people["ellie"].pk, "reference": SAR_REFERENCE,
                      "format": "html"})


@reads("audit:subject_access")
def ig_subject_access_search(world):
    return Read(world.user(Role.IG_OFFICER), reverse("audit:subject_access"),
                ["Ellie Harper", world.case.reference], query={"q": "Harper"})


@reads("audit:subject_access")
def ig_subject_access_request_json(world):
    read = ig_subject_access_request(world)
    read.post["format"] = "json"
    return read


@reads("audit:case_report")
def ig_case_report(world):
    reader = _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:case_report", args=[world.case.pk]),
                [reader, world.case.reference])


@reads("audit:user_report")
def ig_user_report(world):
    _read_by_a_practitioner(world)
    return Read(world.user(Role.IG_OFFICER),
                reverse("audit:user_report", args=[world.social_worker.pk]),
                [world.case.reference])


@reads("audit:alerts")
def ig_alerts(world):
    opener, _ = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:alerts"),
                [opener.get_username(), EMERGENCY_REASON])


@reads("audit:break_glass_queue")
def ig_emergency_access_queue(world):
    opener, _ = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER), reverse("audit:break_glass_queue"),
                [opener.get_username(), world.case.reference, EMERGENCY_REASON])


@reads("audit:break_glass_review")
def ig_emergency_access_review(world):
    opener, grant = _emergency_access(world)
    return Read(world.user(Role.IG_OFFICER),
                reverse("audit:break_glass_review", args=[grant.pk]),
                [opener.get_full_name(), world.case.reference, EMERGENCY_REASON])


# Forms that name the family: they show the case's reference and family name (and a
# person's name) though no note.

@reads("casenotes:note_readers")
def sealed_note_readers_form(world):
    note = world.sealed_note(world.social_worker, body=NOTE_BODY, readers=[world.team_manager])
    return Read(world.social_worker, _case_url("note_readers", world, note.pk),
                [world.case.reference, "Harper family"])


@reads("casenotes:case_manage")
def case_manage_form(world):
    return Read(world.team_manager, _case_url("case_manage", world),
                [world.case.reference, "Harper family"])


@reads("casenotes:transfer_request")
def transfer_request_form(world):
    return Read(world.team_manager, _case_url("transfer_request", world),
                [world.case.reference, "Harper family"])


@reads("casenotes:break_glass")
def emergency_access_form(world):
    # Someone off the case: the page names only the reference, which is still the case's.
    return Read(world.locality_users[Role.SOCIAL_WORKER], _case_url("break_glass", world),
                [world.case.reference])


@reads("casenotes:person_specialist")
def specialist_agency_form(world):
    return Read(world.social_worker,
                _case_url("person_specialist", world, world.people["kayleigh"].pk),
                ["Kayleigh Harper", world.case.reference, "Harper family"])


@reads("casenotes:person_add")
def add_person_form(world):
    return Read(world.social_worker, _case_url("person_add", world),
                [world.case.reference, "Harper family"])


@reads("casenotes:person_edit")
def person_details_form(world):
    return Read(world.social_worker, _case_url("person_edit", world, world.people["dean"].pk),
                ["Dean Walsh", world.case.reference, "Harper family"])


@reads("casenotes:plan_detail")
def family_plan(world):
    from casenotes.actions import do_update_plan

    do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                   sections={"worries": "Missed school on Mondays."}, review_on=None)
    return Read(world.user(Role.PROBATION_OFFICER), _case_url("plan_detail", world),
                ["Missed school on Mondays.", world.case.reference, "Harper family"])


@reads("casenotes:plan_edit")
def family_plan_form(world):
    from casenotes.actions import do_update_plan

    do_update_plan(acting_user=world.social_worker, case=world.case, based_on=0,
                   sections={"next_steps": "Weekly visits."}, review_on=None)
    return Read(world.social_worker, _case_url("plan_edit", world),
                ["Weekly visits.", world.case.reference, "Harper family"])


@reads("discussions:agenda_add")
def agenda_add_form(world):
    from casenotes.actions import do_create_case

    do_create_case(acting_user=world.team_manager, reference="FS-26-0322", family_name="Quayle",
                   category=Case.Category.CHILD_IN_NEED, team=world.fs_team)
    discussion = schedule(world)
    return Read(world.team_manager, reverse("discussions:agenda_add", args=[discussion.pk]),
                ["FS-26-0322", "Quayle family"])


@reads("discussions:schedule")
def discussion_schedule_form(world):
    return Read(world.team_manager, reverse("discussions:schedule", args=[world.fs_team.pk]),
                [world.case.reference, "Harper family"])


# Actions whose refusal re-shows a page of case data: the access list, the note, the
# discussion room, the actions list (answered 400).

@reads("casenotes:lead_allocate")
def lead_allocation_refused(world):
    opener, _ = _emergency_access(world)
    return Read(world.team_manager, _case_url("lead_allocate", world),
                [opener.get_full_name(), EMERGENCY_REASON], post={"lead": ""}, status=400)


@reads("casenotes:keyworker_add")
def keyworker_refused(world):
    opener, _ = _emergency_access(world)
    return Read(world.team_manager, _case_url("keyworker_add", world),
                [opener.get_full_name(), EMERGENCY_REASON], post={"user": ""}, status=400)


@reads("casenotes:addendum_create")
def addendum_refused(world):
    note = _note(world)
    return Read(world.social_worker, _case_url("addendum_create", world, note.pk),
                [NOTE_BODY, ADDENDUM_BODY, "Ellie Harper"], post={"body": ""}, status=400)


def _refused_in_room(world, name, *args, user=None, post=None, discussion=None,
                     shows=(SECTION_TEXT, "Ellie Harper")):
    discussion = discussion or _started_discussion(world)
    return Read(user or world.team_manager,
                reverse(f"discussions:{name}", args=[discussion.pk, *args]), list(shows),
                post=post or {}, status=400)


@reads("discussions:start")
def discussion_start_refused(world):
    return _refused_in_room(world, "start")  # it has already started


@reads("discussions:cancel")
def discussion_cancel_refused(world):
    return _refused_in_room(world, "cancel")  # a started discussion is not cancelled


@reads("discussions:sign_off")
def discussion_sign_off_refused(world):
    return _refused_in_room(world, "sign_off")  # no decision recorded


@reads("discussions:move")
def discussion_move_refused(world):
    discussion = schedule(world)  # not started: there is nothing to move through
    return _refused_in_room(world, "move", discussion=discussion,
                            post={"item": discussion.items.get().pk},
                            shows=("Ellie Harper", world.case.reference))


@reads("discussions:agenda")
def discussion_agenda_refused(world):
    return _refused_in_room(world, "agenda", post={"operation": ""})


@reads("discussions:section_save")
def discussion_section_save_refused(world):
    discussion = _started_discussion(world)
    decision = Section.objects.get(item__discussion=discussion, kind=Section.Kind.DECISION)
    return _refused_in_room(world, "section_save", decision.pk, user=world.social_worker,
                            discussion=discussion, post={"text": "No version."})


@reads("discussions:kept_resolve")
def discussion_kept_text_refused(world):
    discussion = _started_discussion(world)
    worries = Section.objects.get(item__discussion=discussion, kind=Section.Kind.WORRIES)
    kept = discussion_actions.do_save_section(
        acting_user=world.team_manager, section=worries, text="Something else entirely.",
        version=1, base_text="").kept
    discussion_actions.do_resolve_kept_text(acting_user=world.team_manager, kept=kept, add=False)
    return _refused_in_room(world, "kept_resolve", kept.pk, user=world.social_worker,
                            discussion=discussion, post={"resolution": "add"})  # already dealt with


@reads("discussions:action_add")
def discussion_action_add_refused(world):
    discussion = _started_discussion(world)
    return _refused_in_room(world, "action_add", discussion.items.get().pk,
                            user=world.social_worker, discussion=discussion)  # nothing filled in


@reads("discussions:action_remove")
def discussion_action_remove_refused(world):
    discussion, agreed = _signed_off_discussion(world)  # the record is locked
    return _refused_in_room(world, "action_remove", agreed.pk, user=world.social_worker,
                            discussion=discussion, shows=(SECTION_TEXT, AGREED_ACTION))


@reads("discussions:action_complete")
def action_complete_refused(world):
    _, agreed = _signed_off_discussion(world)
    return Read(world.social_worker, reverse("discussions:action_complete", args=[agreed.pk]),
                [AGREED_ACTION, world.case.reference], post={"outcome": "x" * 501}, status=400)


#: Every other named URL, and why it is no read of case data.
NOT_READS = {
    "casenotes:case_create": "the new-case form shows the team and its members (as lead "
                             "practitioners); a refused POST re-shows only what was typed",
    "casenotes:transfer_withdraw": "POST only: withdraws the request and redirects to the "
                                   "access list, with a message that names no case data",
    "casenotes:keyworker_remove": "POST only: ends the grant and redirects to the access list, "
                                  "with a message naming the keyworker (a colleague)",
    "casenotes:break_glass_end": "POST only: ends the emergency access and redirects to the "
                                 "access list, with a message naming who had it (a colleague)",
    "login": "the sign-in form; a signed-in user is redirected",
    "logout": "POST only: signs out and redirects",
    "keep_alive": "POST only: 204, or a redirect back to the page the form was on",
    "password_change": "the user's own password form",
    "two_factor_verify": "the user's own second sign-in step (a code form)",
    "two_factor_setup": "the user's own authenticator set-up (QR code, key, backup codes)",
    "healthz": "database and Redis status for load balancers: no sign-in, no case data",
}


def _url_names(resolver=None, namespace=(), prefix=""):
    """Every URL pattern's full name ("casenotes:case_detail"), and each unnamed one by
    its route, so it cannot pass unclassified. The administration site is left out: it
    is tests/access_matrix.py's ADMIN_SITE row (no case data on any of its pages)."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if not namespace and entry.namespace == "admin":
                continue
            inner = namespace + ((entry.namespace,) if entry.namespace else ())
            yield from _url_names(entry, inner, route)
        elif entry.name:
            yield ":".join((*namespace, entry.name))
        else:
            yield f"<unnamed {route}>"


def test_every_page_is_a_proven_read_or_exempt_with_a_reason():
    pages = set(_url_names())
    covered = {build.url_name for build in READS}
    assert sorted(pages - covered - NOT_READS.keys()) == [], (
        "pages neither proven to fail closed here (a builder in READS) nor exempt in NOT_READS")
    assert sorted((covered | NOT_READS.keys()) - pages) == [], "entries naming no page"
    assert sorted(covered & NOT_READS.keys()) == [], "pages both read and exempt"
    assert [name for name, why in NOT_READS.items() if not why.strip()] == []
    assert sorted(EXERCISES.keys() - NOT_READS.keys()) == [], "exercises of no exemption"


@dataclass
class Visit:
    """One request to an exempt page: who asks (None: nobody signed in), the status it
    answers with, and what it shows (its heading, its message, where it redirects to),
    so that an error page cannot pass for a page that shows nothing."""

    user: object
    url: str
    status: int
    shows: tuple[str, ...]
    post: dict | None = None
    headers: dict = field(default_factory=dict)
    follow: bool = False  # only to a page that is itself no read

    def fetch(self, client: Client):
        if self.post is not None:
            return client.post(self.url, self.post, headers=self.headers, follow=self.follow)
        return client.get(self.url, headers=self.headers, follow=self.follow)


#: How each NOT_READS page is exercised, by URL name; each is marked with `exercises`.
EXERCISES = {}


def exercises(url_name):
    def declare(build):
        EXERCISES[url_name] = build
        return build
    return declare


def _case_full_of_data(world):
    """What the reads show, all at once: a note about Ellie with its addendum, a draft, a
    signed-off discussion (section text, agreed action), an emergency access with its
    reason, a transfer request, and the social worker's own opening of the case."""
    _read_by_a_practitioner(world)
    world.draft(world.social_worker, body=DRAFT_BODY)
    _signed_off_discussion(world)
    _emergency_access(world)
    do_request_transfer(acting_user=world.team_manager, case=world.case,
                        to_team=world.locality_team, reason=TRANSFER_REASON)


def _case_data_markers():
    """Every case's reference and family name, every family member's name, and each text
    written on the case: whole, its opening words (a shortened body) and its marker."""
    texts = (NOTE_BODY, ADDENDUM_BODY, DRAFT_BODY, SECTION_TEXT, AGREED_ACTION,
             EMERGENCY_REASON, TRANSFER_REASON)
    return {*texts, *(text[:16] for text in texts), *re.findall(r"R-\d{4}", " ".join(texts)),
            *(value for case in Case.objects.values_list("reference", "family_name")
              for value in case),
            *Person.objects.values_list("full_name", flat=True)}


@exercises("casenotes:case_create")
def new_case_form(world):
    url = reverse("casenotes:case_create", args=[world.fs_team.pk])
    return [Visit(world.team_manager, url, 200, ("Open a new case",
                                                 world.social_worker.get_full_name())),
            Visit(world.team_manager, url, 400, ("Open a new case", "FS-26-0142"),
                  post={"reference": "FS-26-0142", "family_name": ""})]


@exercises("casenotes:transfer_withdraw")
def transfer_withdrawn(world):
    url = reverse("casenotes:transfer_withdraw", args=[world.case.transfers.get().pk])
    access = _case_url("case_access", world)
    return [Visit(world.team_manager, url, 302, (access, "Transfer request withdrawn."), post={}),
            Visit(world.team_manager, url, 302,
                  (access, "This request has already been withdrawn."), post={})]


@exercises("casenotes:keyworker_remove")
def keyworker_removed(world):
    keyworker = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    grant = do_add_keyworker(acting_user=world.team_manager, case=world.case, user=keyworker)
    url = _case_url("keyworker_remove", world, grant.pk)
    access = _case_url("case_access", world)
    return [Visit(world.team_manager, url, 302,
                  (access, f"{keyworker.get_full_name()} removed as a keyworker."), post={}),
            Visit(world.team_manager, url, 302,
                  (access, "This keyworker's access has already ended."), post={})]


@exercises("casenotes:break_glass_end")
def emergency_access_ended(world):
    opener = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    grant = do_open_break_glass(acting_user=opener, case=world.case,
                                reason_code="immediate_risk")
    url = _case_url("break_glass_end", world, grant.pk)
    access = _case_url("case_access", world)
    return [Visit(world.team_manager, url, 302,
                  (access, f"{opener.get_full_name()}'s emergency access ended now."), post={}),
            Visit(world.team_manager, url, 302,
                  (access, "This emergency access has already ended."), post={})]


@exercises("login")
def sign_in(world):
    url = reverse("login")
    return [Visit(None, url, 200, ("Sign in",)),
            Visit(None, url, 200, ("Enter a correct username and password",),
                  post={"username": world.social_worker.get_username(), "password": "wrong"}),
            Visit(world.social_worker, url, 302, (reverse("casenotes:caseload"),))]


@exercises("logout")
def sign_out(world):
    return [Visit(world.social_worker, reverse("logout"), 200, ("Sign in",), post={},
                  follow=True)]


@exercises("keep_alive")
def stay_signed_in(world):
    url, case_page = reverse("keep_alive"), _case_url("case_detail", world)
    return [Visit(world.social_worker, url, 204, (), post={},
                  headers={"Accept": "application/json"}),
            Visit(world.social_worker, url, 302, (case_page,), post={},
                  headers={"Referer": f"http://testserver{case_page}"})]


@exercises("password_change")
def own_password(world):
    url, worker = reverse("password_change"), world.social_worker
    new = {"new_password": "a-brand-new-passphrase-77",
           "new_password_again": "a-brand-new-passphrase-77"}
    return [Visit(worker, url, 200, ("Change your password",)),
            Visit(worker, url, 400, ("Your current password is not right",),
                  post={"current_password": "wrong", **new}),
            Visit(worker, url, 302, (reverse("casenotes:caseload"), "password has been changed"),
                  post={"current_password": PASSWORD, **new})]


@exercises("two_factor_verify")
def second_sign_in_step(world):
    signed_in = Client()
    signed_in.force_login(world.social_worker)
    enrol(signed_in)  # a device, so a new session is asked for its code
    url = reverse("two_factor_verify")
    return [Visit(world.social_worker, url, 200, ("Enter your security code",)),
            Visit(world.social_worker, url, 400, ("That code is not right",),
                  post={"code": "000000"})]


@exercises("two_factor_setup")
def authenticator_set_up(world):
    url = reverse("two_factor_setup")
    return [Visit(world.social_worker, url, 200, ("Set up two-factor sign-in", "<svg")),
            Visit(world.social_worker, url, 400, ("That code is not right",),
                  post={"code": "000000"})]


@exercises("healthz")
def health_check(world):
    return [Visit(user, reverse("healthz"), 200, ('"database": "ok"',))
            for user in (None, world.social_worker)]


@pytest.mark.parametrize("url_name", sorted(NOT_READS))
def test_a_page_exempt_from_the_reads_shows_no_case_data(world, url_name):
    """Each exempt page, asked for and posted to as it is used (by someone on the case,
    where someone signs in), answers as it should and shows none of the case: not in
    its page, its message, nor where it redirects to. A redirect is followed only to a
    page that is itself no read."""
    assert url_name in EXERCISES, "an exemption with no exercise here is trusted, not checked"
    _case_full_of_data(world)
    visits = EXERCISES[url_name](world)
    markers = _case_data_markers()
    assert visits
    for visit in visits:
        assert resolve(visit.url).view_name == url_name
        client = Client()
        if visit.user is not None:
            client.force_login(visit.user)
        response = visit.fetch(client)
        shown = " ".join([html.unescape(response.content.decode()), response.get("Location", ""),
                          *(str(message) for message in get_messages(response.wsgi_request))])
        assert (response.status_code, [text for text in visit.shows if text not in shown]) == (
            visit.status, [])
        assert sorted(marker for marker in markers if marker in shown) == []


@pytest.mark.parametrize("page", READS, ids=[read.__name__ for read in READS])
def test_a_read_whose_audit_entry_cannot_be_written_fails_and_shows_no_case_data(
        world, page, monkeypatch):
    read = page(world)
    assert resolve(read.url).view_name == page.url_name  # the declaration cannot lie
    client = Client(raise_request_exception=False)
    client.force_login(read.user)

    shown = read.fetch(client)
    assert shown.status_code == read.status
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
