"""The authorization matrix for endpoints, kept as data: who may do what, over HTTP
and over the live socket, for every role and every way of standing to a case.

Change a rule here, in review, before changing the policy. `MATRIX` expands the table
below into one row per (role, relationship, object, action); tests/test_access_matrix.py
(HTTP) and tests/test_access_matrix_live.py (WebSocket) run every row for BOTH users of
the role, and fail if any URL route or socket message has no row (ENDPOINTS,
SOCKET_MESSAGES).

Relationships — how the user stands to the case under test:
    ALLOCATED    a member of the allocated team;
    OTHER_TEAM   works cases, but in another team, with no grant;
    KEYWORKER    added as a keyworker by the case's team manager (the user is in another team);
    HANDOVER     their team handed the case over; within the hand-over period;
    BREAK_GLASS  opened the case in an emergency (no other relationship);
    ORG_WIDE     IG officer or administrator (in no team).

Objects: the case; a note by sensitivity (as the viewer sees it: see SENSITIVITY);
a person in the family; an addendum to a standard note; a transfer request *to the
user's team*; a running group case discussion of the case's allocated team with the
case on its agenda (DISCUSSION: only that team's members may join it); the
administration site (ADMIN_SITE: its index, and the list and a record's page of every
model registered in it). The administration site answers to the account, not to any
case, so its row is tabled once per role, in the role's own standing (ALLOCATED for
the case roles, ORG_WIDE for IG officers and administrators); administrators are
staff superusers, as the demo seed makes its administrator.

Outcomes:
    ALLOW / DENY            the action succeeds / is refused (404 or a refusal, nothing
                            written; for the administration site: every page sends the
                            user to its sign-in page, and shows nothing);
    FULL / PLACEHOLDER / HIDDEN
                            for a note: body readable / "Restricted note — agency, date"
                            only / not even listed;
    RESULT / CANDIDATE / NONE
                            for search: listed as the user's own / offered for emergency
                            access with name, date of birth and reference only / absent;
    FORM / HAS_ACCESS       break-glass: the emergency-access form is offered / the user
                            already has access and is sent to the case (DENY: 404).
"""

from casenotes.permissions import Action as A
from teams.models import CASE_ROLES
from teams.models import Role as R

ALLOCATED, OTHER_TEAM, KEYWORKER, HANDOVER, BREAK_GLASS, ORG_WIDE = (
    "allocated", "other_team", "keyworker", "handover", "break_glass", "org_wide")
RELATIONSHIPS = (ALLOCATED, OTHER_TEAM, KEYWORKER, HANDOVER, BREAK_GLASS, ORG_WIDE)

ALLOW, DENY = "allow", "deny"
FULL, PLACEHOLDER, HIDDEN = "full", "placeholder", "hidden"
RESULT, CANDIDATE, NONE = "result", "candidate", "none"
FORM, HAS_ACCESS = "form", "has_access"

# note sensitivities, from the viewer's point of view
STANDARD = "note:standard"  # final, standard, by a colleague of another agency
RESTRICTED_SAME = "note:restricted_same_agency"  # agency-restricted, by someone of the viewer's agency
RESTRICTED_OTHER = "note:restricted_other_agency"  # agency-restricted, another agency
SEALED_NAMED = "note:sealed_named"  # sealed, the viewer named as a reader
SEALED_NOT_NAMED = "note:sealed_not_named"  # sealed, someone else named
DRAFT_BY_OTHER = "note:draft_by_other"
OWN_DRAFT = "note:own_draft"
NOTES = (STANDARD, RESTRICTED_SAME, RESTRICTED_OTHER, SEALED_NAMED, SEALED_NOT_NAMED,
         DRAFT_BY_OTHER, OWN_DRAFT)

CASE, PERSON, ADDENDUM, TRANSFER = "case", "person", "addendum", "transfer"
DISCUSSION = "discussion"
ADMIN_SITE = "admin_site"

# actions
LIST, VIEW, ADD_NOTE, SEARCH, EXPORT, ACCESS_LIST, REQUEST_TRANSFER, BREAK_GLASS_OPEN = (
    "list", "view", "add_note", "search", "export", "access_list", "request_transfer",
    "break_glass")
LIVE_JOIN, LIVE_DRAFT_SAVE, LIVE_RECEIPT = "live_join", "live_draft_save", "live_receipt"
EDIT_RECORD, RUN, LIVE_RECORD_EDIT = "edit_record", "run", "live_record_edit"
FINALISE, AMEND, HISTORY, SHARE, DECIDE = "finalise", "amend", "history", "share", "decide"
ADMINISTER = "administer"
PLAN_VIEW, PLAN_EDIT = "plan_view", "plan_edit"  # the family's plan: read it; save a change
#: Actions checked over the socket (tests/test_access_matrix_live.py); the rest over HTTP.
LIVE_ACTIONS = frozenset({LIVE_JOIN, LIVE_DRAFT_SAVE, LIVE_RECEIPT, LIVE_RECORD_EDIT})

# --- the table ----------------------------------------------------------------------------
# (object, action): (every case role but the team manager, the team manager)
_ALLOCATED = {
    (CASE, LIST): (ALLOW, ALLOW),
    (CASE, VIEW): (ALLOW, ALLOW),
    (CASE, ADD_NOTE): (ALLOW, ALLOW),
    (CASE, SEARCH): (RESULT, RESULT),
    (CASE, EXPORT): (ALLOW, ALLOW),
    (CASE, ACCESS_LIST): (DENY, ALLOW),
    (CASE, REQUEST_TRANSFER): (DENY, ALLOW),
    (CASE, BREAK_GLASS_OPEN): (HAS_ACCESS, HAS_ACCESS),
    (CASE, LIVE_JOIN): (ALLOW, ALLOW),
    (CASE, LIVE_DRAFT_SAVE): (ALLOW, ALLOW),
    (CASE, PLAN_VIEW): (ALLOW, ALLOW),
    (CASE, PLAN_EDIT): (ALLOW, ALLOW),
    (STANDARD, VIEW): (FULL, FULL),
    (STANDARD, AMEND): (ALLOW, ALLOW),
    (STANDARD, HISTORY): (ALLOW, ALLOW),
    (STANDARD, LIVE_RECEIPT): (FULL, FULL),
    (RESTRICTED_SAME, VIEW): (FULL, FULL),
    (RESTRICTED_SAME, AMEND): (ALLOW, ALLOW),
    (RESTRICTED_SAME, HISTORY): (ALLOW, ALLOW),
    (RESTRICTED_SAME, LIVE_RECEIPT): (FULL, FULL),
    (RESTRICTED_OTHER, VIEW): (PLACEHOLDER, FULL),
    (RESTRICTED_OTHER, AMEND): (DENY, ALLOW),
    (RESTRICTED_OTHER, HISTORY): (DENY, ALLOW),
    (RESTRICTED_OTHER, LIVE_RECEIPT): (PLACEHOLDER, FULL),
    (SEALED_NAMED, VIEW): (FULL, FULL),
    (SEALED_NAMED, AMEND): (ALLOW, ALLOW),
    (SEALED_NAMED, HISTORY): (ALLOW, ALLOW),
    (SEALED_NAMED, SHARE): (DENY, DENY),  # only the author names readers
    (SEALED_NAMED, LIVE_RECEIPT): (FULL, FULL),
    (SEALED_NOT_NAMED, VIEW): (HIDDEN, HIDDEN),
    (SEALED_NOT_NAMED, AMEND): (DENY, DENY),
    (SEALED_NOT_NAMED, HISTORY): (DENY, DENY),
    (SEALED_NOT_NAMED, LIVE_RECEIPT): (HIDDEN, HIDDEN),
    (DRAFT_BY_OTHER, VIEW): (HIDDEN, HIDDEN),
    (DRAFT_BY_OTHER, FINALISE): (DENY, DENY),
    (DRAFT_BY_OTHER, HISTORY): (DENY, DENY),
    (DRAFT_BY_OTHER, LIVE_RECEIPT): (HIDDEN, HIDDEN),
    (OWN_DRAFT, VIEW): (FULL, FULL),
    (OWN_DRAFT, FINALISE): (ALLOW, ALLOW),
    (OWN_DRAFT, AMEND): (DENY, DENY),  # a draft is edited, not amended
    (OWN_DRAFT, HISTORY): (ALLOW, ALLOW),
    (OWN_DRAFT, LIVE_RECEIPT): (FULL, FULL),
    (PERSON, VIEW): (ALLOW, ALLOW),
    (PERSON, SEARCH): (RESULT, RESULT),
    (ADDENDUM, VIEW): (ALLOW, ALLOW),
    (DISCUSSION, VIEW): (FULL, FULL),
    (DISCUSSION, EDIT_RECORD): (ALLOW, ALLOW),
    (DISCUSSION, RUN): (DENY, ALLOW),
    (DISCUSSION, LIVE_JOIN): (ALLOW, ALLOW),
    (DISCUSSION, LIVE_RECORD_EDIT): (ALLOW, ALLOW),
}

#: A discussion of a team the user is not in: nothing of it, not even the room.
_NO_DISCUSSION = {(DISCUSSION, action): (DENY, DENY)
                  for action in (VIEW, EDIT_RECORD, RUN, LIVE_JOIN, LIVE_RECORD_EDIT)}

_NOTHING = {
    (CASE, LIST): (DENY, DENY),
    (CASE, VIEW): (DENY, DENY),
    (CASE, ADD_NOTE): (DENY, DENY),
    (CASE, SEARCH): (CANDIDATE, CANDIDATE),
    (CASE, EXPORT): (DENY, DENY),
    (CASE, ACCESS_LIST): (DENY, DENY),
    (CASE, REQUEST_TRANSFER): (DENY, DENY),
    (CASE, BREAK_GLASS_OPEN): (FORM, FORM),
    (CASE, LIVE_JOIN): (DENY, DENY),
    (CASE, LIVE_DRAFT_SAVE): (DENY, DENY),
    (CASE, PLAN_VIEW): (DENY, DENY),
    (CASE, PLAN_EDIT): (DENY, DENY),
    **{(note, VIEW): (HIDDEN, HIDDEN) for note in NOTES if note not in (SEALED_NAMED, OWN_DRAFT)},
    **{(note, AMEND): (DENY, DENY) for note in (STANDARD, RESTRICTED_SAME, RESTRICTED_OTHER,
                                                 SEALED_NOT_NAMED)},
    **{(note, HISTORY): (DENY, DENY) for note in NOTES if note not in (SEALED_NAMED, OWN_DRAFT)},
    **{(note, LIVE_RECEIPT): (HIDDEN, HIDDEN) for note in NOTES
       if note not in (SEALED_NAMED, OWN_DRAFT)},
    (DRAFT_BY_OTHER, FINALISE): (DENY, DENY),
    (PERSON, VIEW): (DENY, DENY),
    (PERSON, SEARCH): (CANDIDATE, CANDIDATE),
    (ADDENDUM, VIEW): (DENY, DENY),
    (TRANSFER, DECIDE): (DENY, ALLOW),  # a request to the user's own team
    **_NO_DISCUSSION,
}

# A keyworker works the case like a team member, but is not its manager.
_KEYWORKER = {
    **_ALLOCATED,
    (CASE, ACCESS_LIST): (DENY, DENY),
    (CASE, REQUEST_TRANSFER): (DENY, DENY),
    (RESTRICTED_OTHER, VIEW): (PLACEHOLDER, PLACEHOLDER),
    (RESTRICTED_OTHER, AMEND): (DENY, DENY),
    (RESTRICTED_OTHER, HISTORY): (DENY, DENY),
    (RESTRICTED_OTHER, LIVE_RECEIPT): (PLACEHOLDER, PLACEHOLDER),
    **_NO_DISCUSSION,  # the allocated team's meeting, not theirs
}

# The team that handed the case over may read as before, and add nothing.
_HANDOVER = {
    **{k: v for k, v in _KEYWORKER.items() if k[0] != OWN_DRAFT},
    (CASE, ADD_NOTE): (DENY, DENY),
    (CASE, LIVE_DRAFT_SAVE): (DENY, DENY),
    (CASE, PLAN_EDIT): (DENY, DENY),
    (STANDARD, AMEND): (DENY, DENY),
    (RESTRICTED_SAME, AMEND): (DENY, DENY),
    (SEALED_NAMED, AMEND): (DENY, DENY),
}

# Emergency access: standard content, read-only, no copies.
_BREAK_GLASS = {
    **{k: v for k, v in _HANDOVER.items() if k[0] != SEALED_NAMED},
    (CASE, EXPORT): (DENY, DENY),
    (RESTRICTED_SAME, VIEW): (PLACEHOLDER, PLACEHOLDER),
    (RESTRICTED_SAME, HISTORY): (DENY, DENY),
    (RESTRICTED_SAME, LIVE_RECEIPT): (PLACEHOLDER, PLACEHOLDER),
}

_OTHER_TEAM = dict(_NOTHING)

# (object, action): (IG officer, administrator) — no case content, ever; nothing to
# search for, no emergency access (that is for practitioners).
_ORG_WIDE = {
    **{k: (v[0], v[0]) for k, v in _NOTHING.items()},
    (CASE, SEARCH): (NONE, NONE),
    (PERSON, SEARCH): (NONE, NONE),
    (CASE, BREAK_GLASS_OPEN): (DENY, DENY),
    (TRANSFER, DECIDE): (DENY, DENY),
}

# The administration site, once per role (see the header): only administrators get in,
# and even they see no note body on any of its pages.
_ADMIN_SITE_CASE_ROLES = {(ADMIN_SITE, ADMINISTER): (DENY, DENY)}
_ADMIN_SITE_ORG_WIDE = {(ADMIN_SITE, ADMINISTER): (DENY, ALLOW)}  # (IG officer, administrator)

TABLE = {
    ALLOCATED: {**_ALLOCATED, **_ADMIN_SITE_CASE_ROLES}, OTHER_TEAM: _OTHER_TEAM,
    KEYWORKER: _KEYWORKER, HANDOVER: _HANDOVER, BREAK_GLASS: _BREAK_GLASS,
    ORG_WIDE: {**_ORG_WIDE, **_ADMIN_SITE_ORG_WIDE},
}


def _expand() -> list[tuple[R, str, str, str, str]]:
    rows = []
    for relationship, table in TABLE.items():
        if relationship == ORG_WIDE:
            for index, role in enumerate((R.IG_OFFICER, R.ADMINISTRATOR)):
                rows += [(role, relationship, obj, action, expected[index])
                         for (obj, action), expected in table.items()]
            continue
        for role in sorted(CASE_ROLES):
            column = 1 if role == R.TEAM_MANAGER else 0
            rows += [(role, relationship, obj, action, expected[column])
                     for (obj, action), expected in table.items()]
    return rows


#: (role, relationship, object, action, expected), for each of the two users of the role.
MATRIX = _expand()

#: Every named URL route and the matrix (object, action) that covers it. Routes outside
#: case data are covered elsewhere, as named.
ENDPOINTS = {
    "casenotes:caseload": (CASE, LIST),
    "casenotes:search": (CASE, SEARCH),
    "casenotes:transfer_list": (TRANSFER, DECIDE),
    "casenotes:transfer_decide": (TRANSFER, DECIDE),
    "casenotes:transfer_withdraw": (CASE, REQUEST_TRANSFER),
    "casenotes:case_detail": (CASE, VIEW),
    "casenotes:case_export": (CASE, EXPORT),
    "casenotes:chronology_export": (CASE, EXPORT),
    "casenotes:case_history": (CASE, VIEW),
    "casenotes:chronology": (CASE, VIEW),
    "casenotes:case_access": (CASE, ACCESS_LIST),
    "casenotes:lead_allocate": (CASE, ACCESS_LIST),
    "casenotes:keyworker_add": (CASE, ACCESS_LIST),
    "casenotes:keyworker_remove": (CASE, ACCESS_LIST),
    "casenotes:break_glass_end": (CASE, ACCESS_LIST),
    "casenotes:transfer_request": (CASE, REQUEST_TRANSFER),
    "casenotes:case_manage": (CASE, ACCESS_LIST),
    "casenotes:break_glass": (CASE, BREAK_GLASS_OPEN),
    "casenotes:person_specialist": (CASE, ADD_NOTE),
    "casenotes:person_add": (CASE, ADD_NOTE),
    "casenotes:person_edit": (CASE, ADD_NOTE),
    "casenotes:plan_detail": (CASE, PLAN_VIEW),
    "casenotes:plan_edit": (CASE, PLAN_EDIT),
    "casenotes:note_create": (CASE, ADD_NOTE),
    "casenotes:note_detail": (STANDARD, VIEW),
    "casenotes:note_edit": (OWN_DRAFT, FINALISE),
    "casenotes:addendum_create": (STANDARD, AMEND),
    "casenotes:note_history": (STANDARD, HISTORY),
    "casenotes:note_readers": (SEALED_NAMED, SHARE),
    "discussions:room": (DISCUSSION, VIEW),
    "discussions:history": (DISCUSSION, VIEW),
    "discussions:section_save": (DISCUSSION, EDIT_RECORD),
    "discussions:kept_resolve": (DISCUSSION, EDIT_RECORD),
    "discussions:action_add": (DISCUSSION, EDIT_RECORD),
    "discussions:action_remove": (DISCUSSION, EDIT_RECORD),
    "discussions:start": (DISCUSSION, RUN),
    "discussions:cancel": (DISCUSSION, RUN),
    "discussions:move": (DISCUSSION, RUN),
    "discussions:agenda": (DISCUSSION, RUN),
    "discussions:agenda_add": (DISCUSSION, RUN),
    "discussions:sign_off": (DISCUSSION, RUN),
    "admin:*": (ADMIN_SITE, ADMINISTER),  # every page of the administration site
}
#: Routes outside the matrix (no case data, or one person's own list), and the tests
#: that cover them.
OUTSIDE_CASE_DATA = {
    "two_factor_verify": "tests/teams/test_two_factor.py (the signed-in user's own sign-in)",
    "two_factor_setup": "tests/teams/test_two_factor.py (the signed-in user's own device)",
    "keep_alive": "tests/workspace/test_sessions.py (the signed-in user's own session)",
    "password_change": "tests/teams/test_password_change.py (the signed-in user's own password)",
    "healthz": "tests/workspace/test_health.py (no case data, no sign-in)",
    "discussions:schedule": "tests/discussions/test_actions.py (only the team's managers) and "
                            "tests/discussions/test_views.py",
    "discussions:my_actions": "tests/discussions/test_views.py (the owner's own tasks only)",
    "discussions:action_complete": "tests/discussions/test_actions.py::"
                                   "test_completing_a_task_is_recorded_in_the_case",
    "teams:team_detail": "tests/casenotes/policy_matrix.py (VIEW_TEAM) and tests/teams/test_views.py",
    "casenotes:case_create": "tests/casenotes/policy_matrix.py (CREATE_CASE) and "
                             "tests/casenotes/test_case_create.py",
    "audit:break_glass_queue":
        "tests/test_access_matrix.py::test_only_ig_officers_see_the_emergency_access_queue",
    "audit:*": "tests/audit/test_ig_pages.py::test_every_ig_page_refuses_every_other_role",
    "login": "tests/audit (sign-in audit) and tests/workspace/test_page_hardening.py",
    "logout": "tests/audit (sign-out audit)",
}

#: Every live socket route and message type, and the matrix row that covers it.
SOCKET_ROUTES = {
    "^ws/cases/(?P<case_id>[0-9]{1,18})/$": (CASE, LIVE_JOIN),
    "^ws/discussions/(?P<discussion_id>[0-9]{1,18})/$": (DISCUSSION, LIVE_JOIN),
}
SOCKET_MESSAGES = {
    "resume": (STANDARD, LIVE_RECEIPT),  # replay is checked with each receipt row
    "writing": (CASE, LIVE_JOIN),
    "ping": (CASE, LIVE_JOIN),
    "draft.save": (CASE, LIVE_DRAFT_SAVE),
    "section.save": (DISCUSSION, LIVE_RECORD_EDIT),
    "editing": (DISCUSSION, LIVE_JOIN),
}

#: The policy's access-governance actions and the endpoint rows that table them (the
#: policy's first actions are tabled per call in tests/casenotes/policy_matrix.py).
POLICY_ACTIONS = {
    A.MANAGE_CASE_ACCESS: (CASE, ACCESS_LIST),
    A.EDIT_PLAN: (CASE, PLAN_EDIT),
    A.DECIDE_TRANSFER: (TRANSFER, DECIDE),
    A.SHARE_NOTE: (SEALED_NAMED, SHARE),
    A.VIEW_NOTE_HISTORY: (STANDARD, HISTORY),
    A.EXPORT_CASE: (CASE, EXPORT),
    A.SEARCH: (CASE, SEARCH),
    A.BREAK_GLASS: (CASE, BREAK_GLASS_OPEN),
    A.REVIEW_BREAK_GLASS: "audit:break_glass_queue",
    A.JOIN_DISCUSSION: (DISCUSSION, VIEW),
    A.RUN_DISCUSSION: (DISCUSSION, RUN),
    A.SCHEDULE_DISCUSSION: "discussions:schedule",
}
