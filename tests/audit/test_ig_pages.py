"""The information-governance pages (/ig/): only IG officers reach them, and every other
role meets the not-found page and leaves a denied entry; the access log searches by
user, case, person, action, outcome and dates, refuses bad input with a clear message
(and searches nothing), and exports CSV a spreadsheet cannot be tricked into running;
emergency access is queued at once and reviewed; the who-accessed and what-accessed
reports and the alerts read metadata only. Reading the audit trail is itself audited.

Entries come from real pages (the test client) and real actions. Where an entry must
sit at a chosen moment (an old read, a read at 23:30), it is written by
`audit.actions.record` under an injected clock.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import re
from collections import Counter
from contextlib import contextmanager
from html.parser import HTMLParser
from unittest import mock

import pytest
from django.test import Client
from django.urls import get_resolver, reverse
from django.urls.converters import IntConverter
from django.utils import dateformat, timezone

from audit.actions import record
from audit.models import AuditAction, AuditEvent, Outcome
from casenotes.actions import do_add_keyworker, do_open_break_glass
from casenotes.models import CaseGrant
from teams.actions import do_create_user, do_save_membership
from teams.models import Membership, Role
from teams.selectors import actor_for
from tests.factories import PASSWORD, ROLE_AGENCY, create_member
from tests.helpers import AuditWatch, assert_history

SEARCH_URL = "/ig/"
NOTE_BODY = "Quokka-lantern marmalade: the distinctive body no IG page may ever show."
#: What a spreadsheet reads as the start of a formula (and what `_cell` neutralises).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- helpers -------------------------------------------------------------------------

def signed_in(user, **defaults) -> Client:
    client = Client(**defaults)
    client.force_login(user)
    return client


def page_text(response) -> str:
    """The page as a reader sees it (entities such as &#x27; decoded)."""
    return html.unescape(response.content.decode())


def case_url(case) -> str:
    return reverse("casenotes:case_detail", args=[case.pk])


def open_case(user, case, **headers) -> AuditEvent:
    """`user` opens the case page through the test client; the CASE_VIEWED entry."""
    watch = AuditWatch()
    response = signed_in(user).get(case_url(case), headers=headers)
    assert response.status_code == 200
    return watch.one(AuditAction.CASE_VIEWED)


def refused_case(user, case) -> AuditEvent:
    """`user` tries a case they do not work on: not found, and a denied entry."""
    watch = AuditWatch()
    assert signed_in(user).get(case_url(case)).status_code == 404
    return watch.one(AuditAction.ACCESS_DENIED)


@contextmanager
def clock_at(moment: datetime.datetime):
    """Every `timezone.now()` answers `moment` inside the block, and so does a new audit
    entry's `occurred_at`: its field default is the original `timezone.now` function,
    bound when the model was defined, which patching the module attribute cannot reach,
    so the field's default is injected too."""
    occurred_at = AuditEvent._meta.get_field("occurred_at")
    with mock.patch("django.utils.timezone.now", return_value=moment), \
            mock.patch.object(occurred_at, "_get_default", lambda: moment):
        assert timezone.now() == moment and occurred_at.get_default() == moment
        yield


def read_at(moment: datetime.datetime, user, case) -> AuditEvent:
    """A case read by `user` recorded at `moment` (an injected clock)."""
    with clock_at(moment):
        entry = record(actor=actor_for(user), action=AuditAction.CASE_VIEWED,
                       object_type="case", object_id=case.pk, case_id=case.pk)
    entry.refresh_from_db()
    assert entry.occurred_at == moment, "the injected clock did not reach the audit writer"
    return entry


def local_moment(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


def ddmmyyyy(day: datetime.date) -> str:
    return f"{day:%d/%m/%Y}"


def newest_first(queryset) -> list[int]:
    return list(queryset.order_by("-occurred_at", "-id").values_list("id", flat=True))


class _TableRows(HTMLParser):
    """The body rows of the table with a given id, as lists of cell texts."""

    def __init__(self, table_id: str):
        super().__init__(convert_charrefs=True)
        self.table_id, self.inside, self.in_body = table_id, False, False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if self.in_body and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table_rows(response, table_id: str) -> list[list[str]]:
    parser = _TableRows(table_id)
    parser.feed(response.content.decode())
    return parser.rows


def list_items(response, list_id: str) -> list[str]:
    """The texts of the <li> items of the list with a given id."""
    content = response.content.decode()
    start = content.index(f'id="{list_id}"')
    block = content[start:content.index("</ul>", start)]
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", item)).split())
            for item in block.split("<li>")[1:]]


# --- fixtures ------------------------------------------------------------------------

@pytest.fixture
def ig(world):
    return world.user(Role.IG_OFFICER)


@pytest.fixture
def ig_client(ig):
    return signed_in(ig)


@pytest.fixture
def outsider(world):
    """A locality practitioner: works on `world.other_case`, not on `world.case`."""
    return world.locality_users[Role.SOCIAL_WORKER]


@pytest.fixture
def grant(world, outsider):
    """The outsider's emergency access to `world.case`."""
    return do_open_break_glass(acting_user=outsider, case=world.case,
                               reason_code=CaseGrant.Reason.IMMEDIATE_RISK)


@pytest.fixture
def activity(world):
    """The social worker opens the Harper case, a locality family support worker opens
    the Osei case and then tries the Harper case (refused)."""
    worker = world.social_worker
    locality = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    return {
        "worker_view": open_case(worker, world.case),
        "locality_view": open_case(locality, world.other_case),
        "denied": refused_case(locality, world.case),
    }


def search(client, expect_status: int = 200, **params):
    """One search of the access log; proves it left exactly one AUDIT_SEARCHED entry."""
    watch = AuditWatch()
    response = client.get(SEARCH_URL, params)
    assert response.status_code == expect_status, page_text(response)[:2000]
    searched = [e for e in watch.new() if e.action == AuditAction.AUDIT_SEARCHED]
    assert len(searched) == 1, "each search must leave exactly one AUDIT_SEARCHED entry"
    entries = response.context["results"]["entries"]
    # The results table shows exactly the entries the view chose.
    rows = table_rows(response, "entries")
    assert len(rows) == max(1, len(entries))
    return response, [e.pk for e in entries]


# --- only IG officers ----------------------------------------------------------------

def _ig_urls(world, grant) -> list[str]:
    """Every URL in the "audit" namespace, integer arguments filled with real ids."""
    _prefix, audit = get_resolver().namespace_dict["audit"]
    real_ids = {"grant_id": grant.pk, "case_id": world.case.pk,
                "user_id": world.social_worker.pk}
    urls = []
    for pattern in audit.url_patterns:
        converters = pattern.pattern.converters
        for name, converter in converters.items():
            assert isinstance(converter, IntConverter), f"{pattern.name}: {name} is not an int"
            assert name in real_ids, f"audit:{pattern.name} takes {name}: give the test a real id"
        urls.append(reverse(f"audit:{pattern.name}",
                            kwargs={name: real_ids[name] for name in converters}))
    assert len(urls) >= 7 and SEARCH_URL in urls
    return urls


def test_every_ig_page_refuses_every_other_role(world, grant):
    urls = _ig_urls(world, grant)
    others = [(role, user) for role in Role if role != Role.IG_OFFICER
              for user in world.pair(role)]
    assert len(others) == 2 * (len(Role) - 1)
    for role, user in others:
        client = signed_in(user)
        for url in urls:
            for method in ("get", "post"):
                watch = AuditWatch()
                response = getattr(client, method)(url, {"review": "appropriate"}
                                                   if method == "post" else {})
                assert response.status_code == 404, (role, url, method)
                assert b"Access log" not in response.content
                assert watch.actions() == [AuditAction.ACCESS_DENIED], (role, url, method)
                denied = watch.one(AuditAction.ACCESS_DENIED)
                assert denied.outcome == Outcome.DENIED
                assert denied.actor_id == user.pk
                assert (denied.object_type, denied.object_id) == ("audit", url)
                assert denied.reason == "read_audit"
    grant.refresh_from_db()
    assert grant.review == CaseGrant.Review.PENDING and grant.reviewed_by is None

    # An IG officer whose membership has ended is no longer one.
    former, _ = create_member(
        world.bootstrap_admin, role=Role.IG_OFFICER, team=None,
        agency=world.agencies[ROLE_AGENCY[Role.IG_OFFICER]],
        end_date=timezone.localdate() - datetime.timedelta(days=1))
    client = signed_in(former)
    for url in urls:
        watch = AuditWatch()
        assert client.get(url).status_code == 404, url
        assert watch.one(AuditAction.ACCESS_DENIED).actor_id == former.pk

    # Signed out: the sign-in page, nothing else.
    for url in urls:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

    for officer in world.pair(Role.IG_OFFICER):
        client = signed_in(officer)
        for url in urls:
            watch = AuditWatch()
            response = client.get(url)
            assert response.status_code == 200, url
            assert AuditAction.ACCESS_DENIED not in watch.actions()


# --- searching the access log --------------------------------------------------------

def test_search_by_user_name_finds_only_that_users_entries(world, ig_client, activity):
    worker = world.social_worker
    # Any case: user names are matched whatever their case.
    response, found = search(ig_client, user=worker.username.upper())
    assert found == newest_first(AuditEvent.objects.filter(actor_id=worker.pk))[:50]
    assert activity["worker_view"].pk in found
    assert activity["locality_view"].pk not in found and activity["denied"].pk not in found
    first = table_rows(response, "entries")[0]
    assert worker.username in first[1] and first[2] == "Case viewed"


def test_search_by_case_reference_finds_only_that_cases_entries(world, ig_client, activity):
    response, found = search(ig_client, case=world.case.reference)
    # Each row names its case by reference (the officer's word for it), not by number.
    assert {row[4] for row in table_rows(response, "entries")} == {world.case.reference}
    assert found == newest_first(AuditEvent.objects.filter(case_id=world.case.pk))[:50]
    assert activity["worker_view"].pk in found and activity["denied"].pk in found
    assert activity["locality_view"].pk not in found
    assert not AuditEvent.objects.filter(pk__in=found).exclude(case_id=world.case.pk).exists()


def test_search_by_a_persons_name_finds_their_familys_case(world, ig_client, activity):
    _, found = search(ig_client, case="kwame")
    assert found == newest_first(AuditEvent.objects.filter(case_id=world.other_case.pk))[:50]
    assert activity["locality_view"].pk in found
    assert activity["worker_view"].pk not in found and activity["denied"].pk not in found


def test_search_by_action_finds_only_that_action(world, ig_client, activity):
    _, found = search(ig_client, action=AuditAction.CASE_VIEWED.value)
    assert found == [activity["locality_view"].pk, activity["worker_view"].pk]
    assert activity["denied"].pk not in found


def test_search_by_outcome_finds_only_refusals(world, ig_client, activity):
    _, found = search(ig_client, outcome=Outcome.DENIED)
    assert found == newest_first(AuditEvent.objects.filter(outcome=Outcome.DENIED))
    assert activity["denied"].pk in found
    assert activity["worker_view"].pk not in found and activity["locality_view"].pk not in found


def test_search_by_date_range_includes_the_whole_of_the_to_day(world, ig_client, activity):
    today = timezone.localdate()
    day = today - datetime.timedelta(days=10)
    late = read_at(local_moment(day, 23, 30), world.user(Role.PROBATION_OFFICER), world.case)
    early = read_at(local_moment(day, 0, 5), world.user(Role.PROBATION_OFFICER), world.case)
    before = read_at(local_moment(day - datetime.timedelta(days=1), 23, 59),
                     world.user(Role.PROBATION_OFFICER), world.case)

    _, found = search(ig_client, since=ddmmyyyy(day), until=ddmmyyyy(day))
    assert found == [late.pk, early.pk]  # 23:30 on the 'To' day is in; the day before is not

    _, found = search(ig_client, since=ddmmyyyy(day - datetime.timedelta(days=1)),
                      until=ddmmyyyy(day - datetime.timedelta(days=1)))
    assert found == [before.pk]

    _, found = search(ig_client, since=ddmmyyyy(today), until=ddmmyyyy(today),
                      action=AuditAction.CASE_VIEWED.value)
    assert found == [activity["locality_view"].pk, activity["worker_view"].pk]

    # ISO dates work too.
    _, found = search(ig_client, since=day.isoformat(), until=day.isoformat())
    assert found == [late.pk, early.pk]


def test_search_filters_combine(world, ig_client, activity):
    locality = world.locality_users[Role.FAMILY_SUPPORT_WORKER]
    _, found = search(ig_client, user=locality.username, case=world.case.reference)
    assert found == [activity["denied"].pk]


BAD_SEARCHES = {
    "reversed dates": (lambda today: {"since": ddmmyyyy(today - datetime.timedelta(days=1)),
                                      "until": ddmmyyyy(today - datetime.timedelta(days=5))},
                       "The 'To' date must be the same as or after the 'From' date."),
    "year 1800": (lambda today: {"since": "01/01/1800"},
                  "Enter a date between 01/01/2000 and today."),
    "year 3000": (lambda today: {"until": "31/12/3000"},
                  "Enter a date between 01/01/2000 and today."),
    "not a date": (lambda today: {"since": "31/02/2025"},
                   "Enter a real date, for example 23/11/2026."),
    "unknown user": (lambda today: {"user": "nobody.at.all"},
                     "There is no user called 'nobody.at.all'."),
    "unknown case": (lambda today: {"case": "ZZ-9999-0000"},
                     "No case or person matches 'ZZ-9999-0000'."),
    "page 10**9": (lambda today: {"page": str(10**9)},
                   "That page is too far: narrow the search."),
    "page zero": (lambda today: {"page": "0"}, "Choose a page from 1."),
    "page not a number": (lambda today: {"page": "two"}, "Choose a page number."),
    "unknown action": (lambda today: {"action": "99999"}, "Choose an action from the list."),
    "unknown outcome": (lambda today: {"outcome": "maybe"}, "Choose allowed or denied."),
}


@pytest.mark.parametrize("fmt", ["", "csv"])
@pytest.mark.parametrize("name", list(BAD_SEARCHES))
def test_bad_search_input_is_refused_with_a_clear_message(world, ig_client, activity, name, fmt):
    params, message = BAD_SEARCHES[name]
    query = params(timezone.localdate())
    if fmt:
        query["format"] = fmt
    watch = AuditWatch()
    response = ig_client.get(SEARCH_URL, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert message in page_text(response)
    assert response.context["results"] is None
    assert 'id="entries"' not in response.content.decode()
    actions = watch.actions()
    assert AuditAction.AUDIT_SEARCHED not in actions
    assert AuditAction.AUDIT_EXPORTED not in actions


def test_a_page_far_past_the_end_is_empty_not_an_error(world, ig_client, activity):
    response, found = search(ig_client, page="100000")
    assert found == []
    assert "No entries." in page_text(response)
    assert 'rel="prev"' in response.content.decode()
    assert 'rel="next"' not in response.content.decode()


def test_search_pages_through_results(world, ig_client, activity, settings):
    settings.IG_PAGE_SIZE = 2
    everything = newest_first(AuditEvent.objects.filter(actor_id=world.social_worker.pk))
    assert len(everything) > 2
    response, first = search(ig_client, user=world.social_worker.username)
    assert first == everything[:2] and 'rel="next"' in response.content.decode()
    _, second = search(ig_client, user=world.social_worker.username, page="2")
    assert second == everything[2:4]


# --- CSV export ----------------------------------------------------------------------

def _csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="access-log-')
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def test_csv_export_is_the_search_as_a_file_and_is_audited(world, ig_client, activity):
    watch = AuditWatch()
    expected = newest_first(AuditEvent.objects.filter(case_id=world.case.pk))
    response = ig_client.get(SEARCH_URL, {"case": world.case.reference, "format": "csv"})
    rows = _csv_rows(response)
    assert rows[0][:3] == ["When (UTC)", "User", "Agency"]
    assert [r[-1] for r in rows[1:]] == list(AuditEvent.objects.filter(pk__in=expected)
                                            .order_by("-occurred_at", "-id")
                                            .values_list("entry_hash", flat=True))
    assert all(r[11] == str(world.case.pk) for r in rows[1:])
    viewed = [r for r in rows[1:] if r[1] == world.social_worker.username]
    assert any(r[7] == "Case viewed" for r in viewed)
    assert world.locality_users[Role.FAMILY_SUPPORT_WORKER].username in {r[1] for r in rows}
    assert watch.actions() == [AuditAction.AUDIT_EXPORTED]
    exported = watch.one(AuditAction.AUDIT_EXPORTED)
    assert exported.actor_id == world.user(Role.IG_OFFICER).pk
    assert exported.reason.endswith(f"; {len(rows) - 1} entries")


def _hostile_account(world, username: str, *, team=None, role: Role | None = None):
    user = do_create_user(acting_user=world.bootstrap_admin, username=username,
                          password=PASSWORD, first_name="=HYPERLINK(\"http://x\")",
                          last_name="@SUM(1)")
    if role is not None:
        do_save_membership(acting_user=world.bootstrap_admin, membership=Membership(
            user=user, team=team, agency=world.agencies[ROLE_AGENCY[role]], role=role,
            start_date=timezone.localdate() - datetime.timedelta(days=30)))
    return user


def test_csv_export_neutralises_formulas_and_never_contains_a_note_body(world, ig_client):
    worker = world.social_worker
    note = world.standard_note(worker, body=NOTE_BODY)
    reader = signed_in(worker)
    assert reader.get(reverse("casenotes:note_detail", args=[world.case.pk, note.pk])
                      ).status_code == 200
    # Text that starts like a formula, in every field a user can reach:
    # user names (Django allows a leading @, + or -) ...
    plus = _hostile_account(world, "+plus.user")
    at = _hostile_account(world, "@at.user")
    minus = _hostile_account(world, "-minus.user", team=world.locality_team,
                             role=Role.SOCIAL_WORKER)
    for user in (plus, at):
        assert signed_in(user).get(SEARCH_URL).status_code == 404  # denied, as "+plus.user"
    # ... a reason that is exactly a user name (a keyworker added) ...
    do_add_keyworker(acting_user=world.team_manager, case=world.case, user=minus)
    open_case(minus, world.case)
    # ... the browser's user agent and the request id the load balancer passes on ...
    agents = ['=HYPERLINK("http://x","click")', "+1+1", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0"]
    for agent in agents:
        open_case(worker, world.case, **{"user-agent": agent, "x-request-id": "-12345678abc"})
    # ... and a break-glass reason.
    do_open_break_glass(acting_user=world.locality_users[Role.PROBATION_OFFICER],
                        case=world.case, reason_code=CaseGrant.Reason.OTHER,
                        reason='=HYPERLINK("http://x")')

    watch = AuditWatch()
    total = AuditEvent.objects.count()
    response = ig_client.get(SEARCH_URL, {"format": "csv"})
    rows = _csv_rows(response)
    content = response.content.decode("utf-8")
    assert len(rows) == total + 1
    assert watch.actions() == [AuditAction.AUDIT_EXPORTED]

    risky = [(i, cell) for i, row in enumerate(rows) for cell in row
             if cell.startswith(FORMULA_START)]
    assert risky == [], risky[:10]
    cells = {cell for row in rows for cell in row}
    for neutralised in ["'+plus.user", "'@at.user", "'-minus.user", "'-12345678abc",
                        *("'" + a for a in agents)]:
        assert neutralised in cells, neutralised
    assert "Other: =HYPERLINK(\"http://x\")" in cells  # not at the start: left as written

    assert NOTE_BODY not in content
    assert "Quokka" not in content


# --- emergency access review ---------------------------------------------------------

def test_emergency_access_is_queued_at_once_and_its_review_page_lists_what_was_done(
        world, ig_client, outsider):
    grant = do_open_break_glass(acting_user=outsider, case=world.case,
                                reason_code=CaseGrant.Reason.OTHER,
                                reason="Police called out of hours about the children.")
    queue = ig_client.get(reverse("audit:break_glass_queue"))
    assert queue.status_code == 200
    rows = table_rows(queue, "break-glass-queue")
    assert len(rows) == 1
    assert outsider.username in rows[0][1] and rows[0][2] == world.case.reference
    assert "Police called out of hours" in rows[0][3]
    assert "Active" in rows[0][4] and rows[0][5].startswith("Not reviewed")
    review_url = reverse("audit:break_glass_review", args=[grant.pk])
    assert f'href="{review_url}"' in queue.content.decode()

    # Under that access, the outsider opens the case twice and a note.
    note = world.standard_note(world.social_worker, body=NOTE_BODY)
    views = [open_case(outsider, world.case) for _ in range(2)]
    watch = AuditWatch()
    assert signed_in(outsider).get(reverse("casenotes:note_detail", args=[world.case.pk, note.pk])
                                   ).status_code == 200
    note_view = watch.one(AuditAction.NOTE_VIEWED)
    assert {e.break_glass_id for e in [*views, note_view]} == {grant.pk}
    # What they do on their own case is not under the emergency access.
    own = open_case(outsider, world.other_case)
    assert own.break_glass_id is None

    response = ig_client.get(review_url)
    assert response.status_code == 200
    under = [e.pk for e in response.context["entries"]]
    expected = newest_first(AuditEvent.objects.filter(break_glass_id=grant.pk))
    assert under == expected
    assert {v.pk for v in views} | {note_view.pk} <= set(under) and own.pk not in under
    assert AuditEvent.objects.filter(pk__in=under,
                                     action=AuditAction.BREAK_GLASS_OPENED).count() == 1
    rows = table_rows(response, "under-break-glass")
    assert len(rows) == len(expected)
    assert sum(1 for r in rows if r[2].startswith("Case viewed")) == 2
    assert all("Emergency access" in r[2] for r in rows)
    assert NOTE_BODY not in page_text(response)


def test_reviewing_emergency_access_as_appropriate_is_recorded(world, ig, ig_client, grant):
    url = reverse("audit:break_glass_review", args=[grant.pk])
    watch = AuditWatch()
    response = ig_client.post(url, {"review": "appropriate", "note": "Duty call verified."})
    assert response.status_code == 302 and response["Location"] == reverse(
        "audit:break_glass_queue")
    grant.refresh_from_db()
    assert grant.review == CaseGrant.Review.APPROPRIATE
    assert grant.reviewed_by == ig and grant.reviewed_at is not None
    assert grant.review_note == "Duty call verified."
    assert_history(grant, user=ig, history_type="~")
    reviewed = watch.one(AuditAction.BREAK_GLASS_REVIEWED)
    assert (reviewed.actor_id, reviewed.object_type, reviewed.object_id, reviewed.case_id) == (
        ig.pk, "grant", str(grant.pk), world.case.pk)
    assert reviewed.reason == "Appropriate"

    queue = ig_client.get(reverse("audit:break_glass_queue"))
    assert "Review recorded." in page_text(queue)
    assert table_rows(queue, "break-glass-queue")[0][5].startswith("Appropriate")
    page = page_text(ig_client.get(url))
    assert f"Appropriate by {ig.get_full_name()}" in page and "Duty call verified." in page


def test_a_review_sent_from_a_page_another_officer_has_overtaken_records_nothing(
        world, ig, ig_client, grant):
    """Two IG officers review one emergency access at once: the second's page showed no
    review, so theirs is refused with who reviewed it and how, not written over it."""
    url = reverse("audit:break_glass_review", args=[grant.pk])
    shown = page_text(ig_client.get(url))
    assert 'name="seen_review" value=""' in ig_client.get(url).content.decode() and shown
    other = world.user(Role.IG_OFFICER, 1)
    do_save_membership(acting_user=world.bootstrap_admin, membership=Membership(
        user=other, agency=world.agency_of(ig), role=Role.IG_OFFICER))
    first = signed_in(other).post(url, {"review": "follow_up", "note": "Ask the duty manager.",
                                        "seen_review": ""})
    assert first.status_code == 302
    watch = AuditWatch()
    response = ig_client.post(url, {"review": "appropriate", "note": "", "seen_review": ""})
    assert response.status_code == 400
    assert (f"{other.get_full_name()} has reviewed this emergency access since this page was "
            "shown (follow up)") in page_text(response)
    grant.refresh_from_db()
    assert (grant.review, grant.reviewed_by, grant.review_note) == (
        CaseGrant.Review.FOLLOW_UP, other, "Ask the duty manager.")
    assert AuditAction.BREAK_GLASS_REVIEWED not in watch.actions()
    # Their page now shows that review; recording another over it is a knowing choice.
    stamp = re.search(r'name="seen_review" value="([^"]+)"', response.content.decode())[1]
    again = ig_client.post(url, {"review": "appropriate", "note": "", "seen_review": stamp})
    assert again.status_code == 302


def test_a_review_from_a_page_claiming_a_review_there_is_not_asks_for_a_reload(
        ig_client, grant):
    url = reverse("audit:break_glass_review", args=[grant.pk])
    response = ig_client.post(url, {"review": "appropriate", "note": "",
                                    "seen_review": "2026-01-01T00:00:00+00:00"})
    assert response.status_code == 400
    assert "This page is out of date. Reload it, then record your review." in page_text(response)
    grant.refresh_from_db()
    assert grant.review == CaseGrant.Review.PENDING


def test_follow_up_without_a_note_is_refused_and_changes_nothing(world, ig_client, grant):
    url = reverse("audit:break_glass_review", args=[grant.pk])
    history = grant.history.count()
    watch = AuditWatch()
    response = ig_client.post(url, {"review": "follow_up", "note": "   "})
    assert response.status_code == 400
    assert "Say what needs following up." in page_text(response)
    grant.refresh_from_db()
    assert grant.review == CaseGrant.Review.PENDING
    assert grant.reviewed_by is None and grant.reviewed_at is None and grant.review_note == ""
    assert grant.history.count() == history
    assert AuditAction.BREAK_GLASS_REVIEWED not in watch.actions()

    # No outcome chosen: what the browser sends is the (empty) note.
    response = ig_client.post(url, {"note": ""})
    assert response.status_code == 400
    assert "Choose the outcome of your review." in page_text(response)
    grant.refresh_from_db()
    assert grant.review == CaseGrant.Review.PENDING


def test_an_officer_cannot_review_their_own_emergency_access(world):
    officer = world.user(Role.IG_OFFICER, 1)
    do_save_membership(acting_user=world.bootstrap_admin, membership=Membership(
        user=officer, team=world.locality_team, agency=world.agency_of(officer),
        role=Role.SOCIAL_WORKER, start_date=timezone.localdate() - datetime.timedelta(days=3)))
    own = do_open_break_glass(acting_user=officer, case=world.case,
                              reason_code=CaseGrant.Reason.IMMEDIATE_RISK)
    watch = AuditWatch()
    response = signed_in(officer).post(reverse("audit:break_glass_review", args=[own.pk]),
                                       {"review": "appropriate", "note": ""})
    own.refresh_from_db()
    assert own.review == CaseGrant.Review.PENDING and own.reviewed_by is None
    assert response.status_code in (400, 404)
    assert AuditAction.BREAK_GLASS_REVIEWED not in watch.actions()


def test_a_keyworker_grant_is_not_an_emergency_access_to_review(world, ig_client):
    keyworker = do_add_keyworker(acting_user=world.team_manager, case=world.case,
                                 user=world.locality_users[Role.RECOVERY_WORKER])
    url = reverse("audit:break_glass_review", args=[keyworker.pk])
    assert ig_client.get(url).status_code == 404
    assert ig_client.post(url, {"review": "appropriate"}).status_code == 404
    keyworker.refresh_from_db()
    assert keyworker.reviewed_by is None


# --- reports -------------------------------------------------------------------------

@pytest.fixture
def read_notes(world, outsider, grant):
    """The social worker writes a note and reads it; the outsider (emergency access)
    and a probation officer open the case; the outsider also opens their own case."""
    note = world.standard_note(world.social_worker, body=NOTE_BODY)
    client = signed_in(world.social_worker)
    assert client.get(reverse("casenotes:note_detail", args=[world.case.pk, note.pk])
                      ).status_code == 200
    open_case(world.social_worker, world.case)
    open_case(outsider, world.case)
    open_case(outsider, world.case)
    open_case(world.user(Role.PROBATION_OFFICER), world.case)
    open_case(outsider, world.other_case)
    return note


def test_case_report_lists_everyone_who_accessed_the_case_with_counts(
        world, ig, ig_client, read_notes, outsider):
    counts = Counter(AuditEvent.objects.filter(case_id=world.case.pk, actor_id__isnull=False)
                     .values_list("actor_label", flat=True))
    watch = AuditWatch()
    response = ig_client.get(reverse("audit:case_report", args=[world.case.pk]))
    assert response.status_code == 200
    rows = table_rows(response, "who-accessed")
    shown = {row[0]: int(row[2]) for row in rows}
    assert shown == dict(counts)
    assert shown[outsider.username] == counts[outsider.username] >= 3  # grant, views
    # First and last access of each person, as the page shows times (local, to the minute).
    theirs = AuditEvent.objects.filter(case_id=world.case.pk, actor_id=outsider.pk)
    row = next(r for r in rows if r[0] == outsider.username)
    first = theirs.order_by("occurred_at").first().occurred_at
    last = theirs.order_by("occurred_at").last().occurred_at
    assert row[3:5] == [dateformat.format(timezone.localtime(t), "j M Y H:i")
                        for t in (first, last)]
    assert world.user(Role.PROBATION_OFFICER).username in shown
    assert world.locality_users[Role.FAMILY_SUPPORT_WORKER].username not in shown
    page = page_text(response)
    assert NOTE_BODY not in page and "Quokka" not in page
    assert watch.actions() == [AuditAction.AUDIT_REPORT_VIEWED]
    entry = watch.one(AuditAction.AUDIT_REPORT_VIEWED)
    assert (entry.actor_id, entry.object_type, entry.case_id) == (ig.pk, "case", world.case.pk)


def test_user_report_lists_the_cases_the_user_touched(world, ig, ig_client, read_notes, outsider):
    expected = Counter(AuditEvent.objects.filter(actor_id=outsider.pk, case_id__isnull=False)
                       .values_list("case_id", flat=True))
    watch = AuditWatch()
    response = ig_client.get(reverse("audit:user_report", args=[outsider.pk]))
    assert response.status_code == 200
    rows = table_rows(response, "cases-accessed")
    shown = {row[0]: int(row[1]) for row in rows}
    assert shown == {world.case.reference: expected[world.case.pk],
                     world.other_case.reference: expected[world.other_case.pk]}
    page = page_text(response)
    assert NOTE_BODY not in page and "Quokka" not in page
    entry = watch.one(AuditAction.AUDIT_REPORT_VIEWED)
    assert watch.actions() == [AuditAction.AUDIT_REPORT_VIEWED]
    assert (entry.actor_id, entry.object_type, entry.object_id) == (ig.pk, "user", str(outsider.pk))

    # The social worker touched only the Harper case.
    response = ig_client.get(reverse("audit:user_report", args=[world.social_worker.pk]))
    rows = table_rows(response, "cases-accessed")
    assert [row[0] for row in rows] == [world.case.reference]
    assert NOTE_BODY not in page_text(response)


def test_reports_of_missing_cases_and_users_are_not_found(world, ig_client):
    assert ig_client.get(reverse("audit:case_report", args=[987654])).status_code == 404
    assert ig_client.get(reverse("audit:user_report", args=[987654])).status_code == 404
    assert ig_client.get(reverse("audit:break_glass_review", args=[987654])).status_code == 404


# --- alerts --------------------------------------------------------------------------

def _last_weekday_before(today: datetime.date) -> datetime.date:
    day = today - datetime.timedelta(days=1)
    while day.weekday() >= 5:
        day -= datetime.timedelta(days=1)
    return day


def test_alerts_list_emergency_access_many_cases_out_of_hours_and_denied_bursts(
        world, ig, ig_client, outsider, settings):
    settings.IG_ALERT_CASES_PER_HOUR = 1
    settings.IG_ALERT_DENIED_BURST = 3
    settings.IG_WORKING_HOURS = (8, 18)

    # Emergency access, then the outsider reads two cases within the hour.
    grant = do_open_break_glass(acting_user=outsider, case=world.case,
                                reason_code=CaseGrant.Reason.OUT_OF_HOURS)
    first = open_case(outsider, world.other_case)
    second = open_case(outsider, world.case)
    same_hour = (timezone.localtime(first.occurred_at).replace(minute=0, second=0, microsecond=0)
                 == timezone.localtime(second.occurred_at).replace(minute=0, second=0,
                                                                   microsecond=0))

    # A read at 23:30 on a weekday, and one at 10:30 the same day (working hours).
    probation = world.user(Role.PROBATION_OFFICER)
    day = _last_weekday_before(timezone.localdate())
    late = read_at(local_moment(day, 23, 30), probation, world.case)
    daytime = read_at(local_moment(day, 10, 30), probation, world.case)
    # And one in working hours at a weekend (days 1 to 6 ago always include one).
    weekend = next(d for d in (timezone.localdate() - datetime.timedelta(days=n)
                               for n in range(1, 7)) if d.weekday() >= 5)
    saturday_read = read_at(local_moment(weekend, 11, 0), probation, world.other_case)

    # Three refused attempts from one person; two from another (under the threshold).
    bursting = world.user(Role.DA_VICTIM_WORKER, 1)
    for _ in range(3):
        refused_case(bursting, world.other_case)
    few = world.user(Role.RECOVERY_WORKER, 1)
    for _ in range(2):
        refused_case(few, world.other_case)

    watch = AuditWatch()
    response = ig_client.get(reverse("audit:alerts"))
    assert response.status_code == 200
    assert watch.actions() == [AuditAction.ALERTS_VIEWED]
    assert watch.one(AuditAction.ALERTS_VIEWED).actor_id == ig.pk

    off = list_items(response, "alerts-off-caseload")
    assert len(off) == 1 and outsider.username in off[0]
    assert f"{world.case.reference}: Out-of-hours duty" in off[0]
    assert reverse("audit:break_glass_review", args=[grant.pk]) in response.content.decode()

    many = list_items(response, "alerts-many-cases")
    if same_hour:  # (the two reads straddle an hour only if made at hh:59:59.9)
        assert any(outsider.username in item and item.endswith(": 2 cases") for item in many)
    assert not any(probation.username in item for item in many)  # 2 cases, not in one hour

    late_ids = [pk for g in response.context["out_of_hours"] for pk in g.entry_ids]
    assert late.pk in late_ids and saturday_read.pk in late_ids and daytime.pk not in late_ids
    out = list_items(response, "alerts-out-of-hours")
    late_text = f"{timezone.localtime(late.occurred_at):%a %-d %b} 23:30 — {probation.username}"
    assert any(item.startswith(late_text) and f"{world.case.reference}: 1 entry (case viewed)"
               in item for item in out), out

    denied = list_items(response, "alerts-denied")
    assert any(bursting.username in item and item.endswith(": 3 refused") for item in denied)
    assert not any(few.username in item for item in denied)


def test_entries_about_a_person_an_account_or_a_team_name_them(world, ig_client):
    ellie, worker, team = world.people["ellie"], world.social_worker, world.case.allocated_team
    actor = actor_for(world.team_manager)
    for object_type, object_id in (("person", ellie.pk), ("user", worker.pk), ("team", team.pk),
                                   ("note", 999), ("person", 987654)):
        record(actor=actor, action=AuditAction.CASE_FORM_VIEWED, object_type=object_type,
               object_id=object_id, case_id=world.case.pk)
    response, _ = search(ig_client, action=str(AuditAction.CASE_FORM_VIEWED.value))
    objects = [row[3] for row in table_rows(response, "entries")]
    # Newest first: each name above its number (a line of its own, run together here);
    # a person no longer on record and a note keep their number only.
    assert objects == ["person 987654", "note 999", f"{team.name}team {team.pk}",
                       f"{worker.username}user {worker.pk}",
                       f"{ellie.full_name}person {ellie.pk}"]


def test_out_of_hours_reads_are_one_line_per_person_case_and_day(world, ig_client, settings):
    settings.IG_WORKING_HOURS = (8, 18)
    probation = world.user(Role.PROBATION_OFFICER)
    day = _last_weekday_before(timezone.localdate())
    reads = [read_at(local_moment(day, 22, minute), probation, world.case) for minute in (5, 40)]
    reads.append(read_at(local_moment(day, 23, 10), probation, world.case))
    other = read_at(local_moment(day, 22, 30), probation, world.other_case)
    response = ig_client.get(reverse("audit:alerts"))
    groups = response.context["out_of_hours"]
    assert sorted(sorted(g.entry_ids) for g in groups) == sorted(
        [sorted(r.pk for r in reads), [other.pk]])
    out = list_items(response, "alerts-out-of-hours")
    assert any(f"22:05–23:10 — {probation.username}, {world.case.reference}: 3 entries "
               "(case viewed)" in item for item in out), out


def test_a_refusal_says_what_was_tried_and_actions_are_listed_in_their_groups(
        world, ig_client, activity):
    response, _ = search(ig_client, outcome="denied")
    detail = [row[6] for row in table_rows(response, "entries")]
    assert detail and all(d.startswith("Tried to open a case") for d in detail), detail
    page = response.content.decode()
    assert '<optgroup label="Reading case data">' in page
    assert '<optgroup label="Refusals">' in page
    # Still chosen and searched by its number.
    response, found = search(ig_client, action=str(AuditAction.ACCESS_DENIED.value))
    assert f'<option value="{AuditAction.ACCESS_DENIED.value}" selected>' in response.content.decode()
    assert activity["denied"].pk in found


def test_opening_who_may_read_a_sealed_note_is_recorded_as_that_page(world):
    author = world.user(Role.DA_VICTIM_WORKER)
    note = world.sealed_note(author)
    client = Client()
    client.force_login(author)
    watch = AuditWatch()
    assert client.get(reverse("casenotes:note_readers",
                              args=[world.case.pk, note.pk])).status_code == 200
    entry = watch.one(AuditAction.NOTE_FORM_VIEWED)
    assert (entry.object_type, entry.object_id, entry.reason) == (
        "note", str(note.pk), "who may read this sealed note")
