"""The endpoint authorization matrix (tests/access_matrix.py) over HTTP, for both users
of every role in every relationship, and the walk of the URL resolver that fails when
a route has no row.

One test per (role, relationship, user) checks every HTTP row of that combination and
reports every mismatch at once; socket rows are in tests/test_access_matrix_live.py.
The administration site's row walks every page in `admin_pages` (every registered
model), once per user of every role.
"""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.html import escape

from casenotes.actions import (
    do_add_keyworker,
    do_add_person,
    do_create_case,
    do_decide_transfer,
    do_open_break_glass,
    do_request_transfer,
)
from casenotes.models import (
    Addendum,
    Case,
    CaseGroupObjectPermission,
    CaseNote,
    CasePlan,
    CaseTransfer,
    CaseUserObjectPermission,
    Person,
)
from casenotes.permissions import policy
from discussions.actions import do_schedule_discussion, do_start_discussion
from discussions.models import Section
from teams.actions import do_save_user
from teams.models import CASE_ROLES, Agency, Membership, Role, Team
from tests import access_matrix as am
from tests.casenotes import policy_matrix as pm
from tests.casenotes.test_permissions import _note_for as note_for_sensitivity

_SENSITIVITY = {
    am.STANDARD: pm.STANDARD, am.RESTRICTED_SAME: pm.RESTRICTED_SAME_AGENCY,
    am.RESTRICTED_OTHER: pm.RESTRICTED_OTHER_AGENCY, am.SEALED_NAMED: pm.SEALED_NAMED,
    am.SEALED_NOT_NAMED: pm.SEALED_NOT_NAMED, am.DRAFT_BY_OTHER: pm.DRAFT_BY_OTHER,
    am.OWN_DRAFT: pm.OWN_DRAFT,
}
R = Person.RoleInFamily


def build_relationships(world) -> dict:
    """Cases for every relationship, made through the actions: a keyworker case, a case
    handed over by the FS team, a case every FS practitioner opened in an emergency,
    and an open transfer request to the FS team."""
    fs_manager = world.team_manager
    locality_manager = world.locality_users[Role.TEAM_MANAGER]
    fs_practitioners = world.fs_members()

    def new_case(manager, team, reference, family, child):
        case = do_create_case(acting_user=manager, reference=reference, family_name=family,
                              category=Case.Category.CHILD_IN_NEED, team=team)
        do_add_person(acting_user=manager, case=case, full_name=child, role_in_family=R.CHILD,
                      date_of_birth=datetime.date(2017, 5, 1))
        return case

    keyworker_case = new_case(locality_manager, world.locality_team, "EH-MX-0001", "Keyes",
                              "Kit Keyes")
    for user in fs_practitioners:
        do_add_keyworker(acting_user=locality_manager, case=keyworker_case, user=user)
    handover_case = new_case(fs_manager, world.fs_team, "FS-MX-0002", "Hollis", "Holly Hollis")
    transfer = do_request_transfer(acting_user=fs_manager, case=handover_case,
                                   to_team=world.locality_team, reason="Risk has fallen.")
    do_decide_transfer(acting_user=locality_manager, transfer=transfer, accept=True,
                       reason="Agreed at the step-down panel.")
    emergency_case = new_case(locality_manager, world.locality_team, "EH-MX-0003", "Garside",
                              "Gus Garside")
    for user in fs_practitioners:
        do_open_break_glass(acting_user=user, case=emergency_case, reason_code="immediate_risk")
    incoming = do_request_transfer(acting_user=locality_manager, case=world.other_case,
                                   to_team=world.fs_team, reason="Risk has risen.")
    relationships = {
        am.ALLOCATED: world.case, am.OTHER_TEAM: world.other_case, am.KEYWORKER: keyworker_case,
        am.HANDOVER: handover_case, am.BREAK_GLASS: emergency_case, am.ORG_WIDE: world.case,
    }
    # A running group case discussion of each case's allocated team, the case on its agenda.
    discussions = {}
    for case in {c.pk: c for c in relationships.values()}.values():
        case.refresh_from_db()
        team = case.allocated_team
        manager = fs_manager if team == world.fs_team else locality_manager
        discussion = do_schedule_discussion(
            acting_user=manager, team=team, cases=[case], invitees=[],
            scheduled_for=timezone.now() + datetime.timedelta(minutes=5))
        discussions[case.pk] = do_start_discussion(acting_user=manager, discussion=discussion)
    return {**relationships, "incoming_transfer": incoming, "discussions": discussions}


def make_administrators_staff(world) -> None:
    """The administrators' accounts made staff superusers, as the demo seed makes its
    administrator (and as an administrator does for a colleague in the admin)."""
    for user in world.pair(Role.ADMINISTRATOR):
        account = get_user_model().objects.get(pk=user.pk)  # the shared object stays as it is
        account.is_staff = account.is_superuser = True
        do_save_user(acting_user=world.bootstrap_admin, user=account,
                     changed_fields=["is_staff", "is_superuser"])


@pytest.fixture(scope="module")
def cases(module_world, django_db_blocker):
    with django_db_blocker.unblock():
        made = build_relationships(module_world)
        make_administrators_staff(module_world)
        return made


@pytest.fixture
def world(module_world, db):
    return module_world


def admin_pages(world, case) -> list[tuple[str, list[str]]]:
    """Every page of the administration site the matrix walks, each with what it shows
    an administrator: the index (a link to every registered model's list); for every
    registered model its list (a link to the record chosen below) and, if it has any
    record, that record's page; and the case's history. The records chosen are the
    case under test and its permissions, its team and that team's group, an agency, and
    the account and membership of someone outside the team; other models give their
    first record."""
    outsider = world.locality_users[Role.TEAM_MANAGER]
    chosen = {
        Case: case, Team: case.allocated_team, Group: case.allocated_team.group,
        Agency: world.agency_of(world.team_manager),
        Membership: world.memberships[outsider.pk], get_user_model(): outsider,
        CaseGroupObjectPermission: CaseGroupObjectPermission.objects.filter(
            content_object=case).order_by("pk").first(),
        CaseUserObjectPermission: CaseUserObjectPermission.objects.filter(
            content_object=case).order_by("pk").first(),
    }
    index, pages = [], []
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        changelist = reverse(f"{name}_changelist")
        index.append(f'href="{changelist}"')
        record = chosen.get(model) or model._default_manager.order_by("pk").first()
        if record is None:
            pages.append((changelist, []))
            continue
        change = reverse(f"{name}_change", args=[record.pk])
        pages += [(changelist, [f'href="{change}"']), (change, [escape(str(record))])]
    pages.append((reverse("admin:casenotes_case_history", args=[case.pk]), [escape(str(case))]))
    return [(reverse("admin:index"), index), *pages]


def _combinations():
    for relationship in am.RELATIONSHIPS:
        roles = ((Role.IG_OFFICER, Role.ADMINISTRATOR) if relationship == am.ORG_WIDE
                 else sorted(CASE_ROLES))
        for role in roles:
            for index in (0, 1):
                yield pytest.param(role, relationship, index,
                                   id=f"{role.value}-{relationship}-user{index + 1}")


class Checker:
    """Runs one user's rows over HTTP and collects what does not match."""

    def __init__(self, world, cases, user, relationship):
        self.world, self.user, self.relationship = world, user, relationship
        self.case = cases[relationship]
        self.transfer = cases["incoming_transfer"]
        self.discussion = cases["discussions"][self.case.pk]
        self.client = Client()
        self.client.force_login(user)
        self.notes: dict[str, CaseNote] = {}
        self.mismatches: list[str] = []

    # --- helpers ---------------------------------------------------------------------
    def url(self, name, *args):
        return reverse(f"casenotes:{name}", args=args)

    def case_page(self) -> str | None:
        response = self.client.get(self.url("case_detail", self.case.pk))
        return response.content.decode() if response.status_code == 200 else None

    def note(self, sensitivity: str) -> CaseNote:
        if sensitivity not in self.notes:
            self.notes[sensitivity] = note_for_sensitivity(
                self.world, self.user, self.case, _SENSITIVITY[sensitivity])
        return self.notes[sensitivity]

    def search(self, query: str, link_path: str, candidate_path: str) -> str:
        page = self.client.get(self.url("search"), {"q": query}).content.decode()
        if f'href="{link_path}"' in page:
            return am.RESULT
        if f'href="{candidate_path}"' in page:
            return am.CANDIDATE
        assert self.case.reference not in page, "reference shown without a reason"
        return am.NONE

    # --- one row ---------------------------------------------------------------------
    def check(self, obj: str, action: str, expected: str) -> None:
        got = self.outcome(obj, action)
        if got != expected:
            self.mismatches.append(f"{obj} {action}: expected {expected}, got {got}")

    def outcome(self, obj: str, action: str) -> str:  # noqa: C901 (one branch per row kind)
        case, client = self.case, self.client
        status = lambda response: am.ALLOW if response.status_code in (200, 302) else (  # noqa: E731
            am.DENY if response.status_code == 404 else f"status {response.status_code}")
        if obj == am.CASE:
            if action == am.LIST:
                page = client.get(self.url("caseload")).content.decode()
                return am.ALLOW if case.reference in page else am.DENY
            if action == am.VIEW:
                return status(client.get(self.url("case_detail", case.pk)))
            if action == am.ADD_NOTE:
                before = CaseNote.objects.filter(case=case).count()
                now = timezone.localtime() - datetime.timedelta(hours=1)
                response = client.post(self.url("note_create", case.pk), {
                    "note_type": CaseNote.NoteType.HOME_VISIT, "occurred_day": now.day,
                    "occurred_month": now.month, "occurred_year": now.year,
                    "occurred_time": now.strftime("%H:%M"), "body": "Seen at home, all well.",
                    "sensitivity": CaseNote.Sensitivity.STANDARD, "intent": "finalise"})
                added = CaseNote.objects.filter(case=case).count() - before
                if response.status_code == 302 and added == 1:
                    return am.ALLOW
                return am.DENY if response.status_code == 404 and added == 0 else (
                    f"status {response.status_code}, {added} added")
            if action == am.SEARCH:
                return self.search(case.family_name, self.url("case_detail", case.pk),
                                   self.url("break_glass", case.pk))
            if action == am.EXPORT:  # the record and its chronology: the same answer
                answers = {status(client.get(self.url(name, case.pk)))
                           for name in ("case_export", "chronology_export")}
                assert len(answers) == 1, answers
                return answers.pop()
            if action == am.ACCESS_LIST:
                return status(client.get(self.url("case_access", case.pk)))
            if action == am.PLAN_VIEW:
                return status(client.get(self.url("plan_detail", case.pk)))
            if action == am.PLAN_EDIT:
                plan = CasePlan.objects.filter(case=case).first()
                before = plan.version if plan else 0
                response = client.post(self.url("plan_edit", case.pk), {
                    "worries": f"Worry written by {self.user.username}.", "based_on": before})
                after = CasePlan.objects.filter(case=case).values_list("version", flat=True).first() or 0
                if response.status_code == 302 and after == before + 1:
                    return am.ALLOW
                return am.DENY if response.status_code == 404 and after == before else (
                    f"status {response.status_code}, version {before} -> {after}")
            if action == am.REQUEST_TRANSFER:
                target = (self.world.locality_team if case.allocated_team_id == self.world.fs_team.pk
                          else self.world.fs_team)
                before = CaseTransfer.objects.filter(case=case).count()
                response = client.post(self.url("transfer_request", case.pk), {
                    "to_team": target.pk, "reason": "Needs a different team.", "handover_days": 28})
                made = CaseTransfer.objects.filter(case=case).count() - before
                if response.status_code == 302 and made == 1:
                    return am.ALLOW
                return am.DENY if response.status_code == 404 and made == 0 else (
                    f"status {response.status_code}, {made} made")
            if action == am.BREAK_GLASS_OPEN:
                response = client.get(self.url("break_glass", case.pk))
                if response.status_code == 200:
                    return am.FORM
                if response.status_code == 302 and response.url == self.url("case_detail", case.pk):
                    return am.HAS_ACCESS
                return am.DENY if response.status_code == 404 else f"status {response.status_code}"
        if obj.startswith("note:"):
            # Finalising changes the note: it gets one of its own, so later rows see the
            # note the matrix describes.
            note = (note_for_sensitivity(self.world, self.user, case, _SENSITIVITY[obj])
                    if action == am.FINALISE else self.note(obj))
            if action == am.VIEW:
                detail = client.get(self.url("note_detail", case.pk, note.pk))
                page = self.case_page() or ""
                listed = f'id="note-{note.pk}"' in page
                if detail.status_code == 200 and note.body in detail.content.decode() and listed:
                    return am.FULL
                if detail.status_code == 404 and listed and note.body not in page:
                    return am.PLACEHOLDER
                if detail.status_code == 404 and not listed:
                    return am.HIDDEN
                return f"status {detail.status_code}, listed {listed}"
            if action == am.AMEND:
                response = client.post(self.url("addendum_create", case.pk, note.pk),
                                       {"body": "Correction: it was Tuesday."})
                made = Addendum.objects.filter(note=note).exists()
                if response.status_code == 302 and made:
                    return am.ALLOW
                return am.DENY if response.status_code in (404, 400) and not made else (
                    f"status {response.status_code}")
            if action == am.HISTORY:
                return status(client.get(self.url("note_history", case.pk, note.pk)))
            if action == am.SHARE:
                return status(client.get(self.url("note_readers", case.pk, note.pk)))
            if action == am.FINALISE:
                moment = timezone.localtime(note.occurred_at)
                response = client.post(self.url("note_edit", case.pk, note.pk), {
                    "version": note.version, "note_type": note.note_type,
                    "occurred_day": moment.day, "occurred_month": moment.month,
                    "occurred_year": moment.year, "occurred_time": moment.strftime("%H:%M"),
                    "body": note.body, "sensitivity": note.sensitivity, "intent": "finalise"})
                final = CaseNote.objects.get(pk=note.pk).is_final
                if response.status_code == 302 and final:
                    return am.ALLOW
                return am.DENY if response.status_code == 404 and not final else (
                    f"status {response.status_code}")
        if obj == am.PERSON:
            person = case.people.order_by("pk").first()
            if action == am.VIEW:
                return am.ALLOW if person.full_name in (self.case_page() or "") else am.DENY
            if action == am.SEARCH:
                return self.search(person.full_name, self.url("case_detail", case.pk),
                                   self.url("break_glass", case.pk))
        if obj == am.ADDENDUM and action == am.VIEW:
            note = self.note(am.STANDARD)
            author = self.world.colleague(self.user, case, same_agency=False) \
                if self.relationship != am.ORG_WIDE else note.author
            from casenotes.actions import do_add_addendum
            do_add_addendum(acting_user=author, note=note, body="Addendum: school confirmed.")
            response = client.get(self.url("note_detail", case.pk, note.pk))
            shown = response.status_code == 200 and "school confirmed" in response.content.decode()
            return am.ALLOW if shown else am.DENY
        if obj == am.DISCUSSION:
            return self.discussion_outcome(action)
        if obj == am.ADMIN_SITE and action == am.ADMINISTER:
            return self.admin_outcome()
        if obj == am.TRANSFER and action == am.DECIDE:
            response = client.post(self.url("transfer_decide", self.transfer.pk), {
                "decision": "reject", "decision_reason": "Not enough capacity this month."})
            self.transfer.refresh_from_db()
            rejected = self.transfer.status == CaseTransfer.Status.REJECTED
            if response.status_code == 302 and rejected:
                return am.ALLOW
            return am.DENY if response.status_code == 404 and not rejected else (
                f"status {response.status_code}")
        return f"no check for {obj} {action}"

    def admin_outcome(self) -> str:
        """ALLOW: every page of the administration site is shown with its records, and
        no note or addendum body is on any of them. DENY: every page sends the user to
        the site's sign-in page, and neither the answer nor that page shows its records."""
        self.note(am.STANDARD)  # at least one note body on the case to look for
        bodies = [*CaseNote.objects.values_list("body", flat=True),
                  *Addendum.objects.values_list("body", flat=True)]
        sign_in = reverse("admin:login")
        outcomes = set()
        for url, shows in admin_pages(self.world, self.case):
            response = self.client.get(url)
            page = response.content.decode()
            if any(text in page for body in bodies for text in (body, escape(body))):
                return f"a note body on {url}"
            if response.status_code == 200:
                missing = [marker for marker in shows if marker not in page]
                if missing:
                    return f"{url} shown without {missing}"
                outcomes.add(am.ALLOW)
                continue
            target = urlsplit(response.get("Location", ""))
            if response.status_code == 302 and target.path == sign_in and parse_qs(
                    target.query).get("next") == [url]:
                page += self.client.get(response["Location"]).content.decode()
                shown = [marker for marker in shows if marker in page]
                if shown:
                    return f"{url} refused, but showed {shown}"
                outcomes.add(am.DENY)
                continue
            return f"{url}: status {response.status_code}"
        return outcomes.pop() if len(outcomes) == 1 else "some pages shown, some refused"

    def discussion_outcome(self, action: str) -> str:
        discussion, client = self.discussion, self.client
        url = lambda name, *args: reverse(f"discussions:{name}", args=(discussion.pk, *args))  # noqa: E731
        if action == am.VIEW:
            response = client.get(url("room"))
            if response.status_code == 404:
                return am.DENY
            page = response.content.decode()
            shown = f"{self.case.family_name} family" in page and 'name="text"' in page
            return am.FULL if response.status_code == 200 and shown else (
                f"status {response.status_code}, record shown {shown}")
        if action == am.EDIT_RECORD:
            section = Section.objects.get(item__discussion=discussion, kind=Section.Kind.WORRIES)
            text = f"Worry noted by {self.user.get_username()}."
            response = client.post(url("section_save", section.pk),
                                   {"text": text, "version": section.version})
            saved = Section.objects.get(pk=section.pk).text == text
            if response.status_code == 302 and saved:
                return am.ALLOW
            return am.DENY if response.status_code == 404 and not saved else (
                f"status {response.status_code}, saved {saved}")
        if action == am.RUN:
            # Moving to the item already current: allowed or refused, it changes nothing.
            response = client.post(url("move"), {"item": discussion.current_item_id})
            return am.ALLOW if response.status_code == 302 else (
                am.DENY if response.status_code == 404 else f"status {response.status_code}")
        return f"no check for discussion {action}"


@pytest.mark.parametrize(("role", "relationship", "index"), list(_combinations()))
def test_every_http_row_of_the_matrix_holds_for_each_user(world, cases, role, relationship,
                                                           index):
    user = world.user(role, index)
    checker = Checker(world, cases, user, relationship)
    rows = [row for row in am.MATRIX
            if row[0] == role and row[1] == relationship and row[3] not in am.LIVE_ACTIONS]
    assert rows
    for _, _, obj, action, expected in rows:
        checker.check(obj, action, expected)
    assert not checker.mismatches, "\n".join(checker.mismatches)


# --- the matrix covers every route ---------------------------------------------------------

def _route_names(resolver=None, namespace="") -> set[str]:
    names = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace in ("admin", "audit"):
                names.add(f"{entry.namespace}:*")  # whole sections with their own tests
                continue
            names |= _route_names(entry, inner)
        elif isinstance(entry, URLPattern):
            names.add(f"{namespace}{entry.name}" if entry.name else f"{namespace}<unnamed {entry.pattern}>")
    return names


def test_every_url_route_has_a_row_in_the_matrix():
    covered = set(am.ENDPOINTS) | set(am.OUTSIDE_CASE_DATA)
    missing = sorted(_route_names() - covered)
    assert not missing, f"routes with no row in tests/access_matrix.py: {missing}"
    rows = {(row[2], row[3]) for row in am.MATRIX}
    assert set(am.ENDPOINTS.values()) <= rows


def test_every_socket_route_and_message_type_has_a_row_in_the_matrix():
    import typing

    from casenotes import messages
    from casenotes.consumers import RefuseConnection
    from workspace.routing import websocket_urlpatterns

    routes = {str(p.pattern) for p in websocket_urlpatterns
              if p.callback.consumer_class is not RefuseConnection}
    assert routes == set(am.SOCKET_ROUTES), "a socket route with no row in the matrix"
    types = {typing.get_args(cls.model_fields["type"].annotation)[0]
             for cls in messages._Message.__subclasses__()}
    assert types == set(am.SOCKET_MESSAGES), "a socket message type with no row in the matrix"
    rows = {(row[2], row[3]) for row in am.MATRIX}
    assert set(am.SOCKET_MESSAGES.values()) | set(am.SOCKET_ROUTES.values()) <= rows


def test_only_ig_officers_see_the_emergency_access_queue(world, cases):
    for role in Role:
        for index in (0, 1):
            user = world.user(role, index)
            client = Client()
            client.force_login(user)
            response = client.get(reverse("audit:break_glass_queue"))
            expected = 200 if role == Role.IG_OFFICER else 404
            assert response.status_code == expected, (role, index)
            if expected == 200:
                assert "EH-MX-0003" in response.content.decode()


def test_the_matrix_relationships_are_what_they_say(world, cases):
    """The set-up itself: each relationship gives the access its name says."""
    user = world.social_worker
    for relationship, source in ((am.ALLOCATED, "team"), (am.KEYWORKER, "keyworker"),
                                 (am.HANDOVER, "handover"), (am.BREAK_GLASS, "break_glass")):
        access = policy.case_access(user, cases[relationship])
        assert access is not None and set(access.sources) == {source}, relationship
    assert policy.case_access(user, cases[am.OTHER_TEAM]) is None
