"""The permission policy: the one place that says who may see and do what.

Every view, form, list, export and (later) socket consumer asks this module.

Case access follows a legitimate relationship:
- a case's allocated team holds `view_case` and `contribute_to_case` on it through
  the team's group (guardian direct-FK rows, written only by actions);
- a user acts through the team only while their Membership is active, checked here
  at every call, so an ended membership grants nothing from that moment on;
- a team that handed the case over keeps `view_case` until its hand-over ends;
- a keyworker from outside the team holds per-user rows (CaseUserObjectPermission)
  given by a CaseGrant; break-glass holds `view_case` alone, for a few hours, and sees
  standard content only;
- every row may carry an expiry, checked here at every call: access ends by itself.

Note content within a visible case:
- standard: everyone with access to the case;
- agency-restricted: the author's agency and the allocated team's manager; others
  see a placeholder with agency and date only;
- sealed: the author and named readers; others see nothing at all;
- drafts: their author only.

No account type bypasses these rules: superusers, administrators and IG officers get
no case content unless a rule above grants it. Any error while deciding denies.
"""

import dataclasses
import datetime
import enum
import functools
import logging
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.actions import Actor, record
from audit.models import AuditAction, Outcome
from casenotes.models import (
    Case,
    CaseGrant,
    CaseGroupObjectPermission,
    CaseNote,
    CaseTransfer,
    CaseUserObjectPermission,
)
from discussions.models import AgreedAction, Discussion
from teams.models import Membership, Role, Team
from teams.selectors import active_case_memberships, actor_for, is_administrator, is_ig_officer
from workspace.forms import as_id
from workspace.prepared import DateTime, Int, Ints, Prepared

logger = logging.getLogger(__name__)

VIEW_CASE = "view_case"
CONTRIBUTE = "contribute_to_case"
TEAM_PERMISSIONS = (VIEW_CASE, CONTRIBUTE)


class Action(enum.StrEnum):
    LIST_CASES = "list_cases"
    VIEW_CASE = "view_case"
    ADD_NOTE = "add_note"
    ADD_PERSON = "add_person"
    EDIT_PLAN = "edit_plan"  # the family's plan
    CLOSE_CASE = "close_case"
    VIEW_NOTE = "view_note"
    EDIT_NOTE = "edit_note"
    FINALISE_NOTE = "finalise_note"
    AMEND_NOTE = "amend_note"
    VIEW_TEAM = "view_team"
    CREATE_CASE = "create_case"
    MANAGE_ORGANISATION = "manage_organisation"
    # case access governance
    MANAGE_CASE_ACCESS = "manage_case_access"  # lead, keyworkers, transfer requests, access list
    DECIDE_TRANSFER = "decide_transfer"
    SHARE_NOTE = "share_note"  # name or remove the readers of a sealed note
    VIEW_NOTE_HISTORY = "view_note_history"
    EXPORT_CASE = "export_case"  # download the notes one may read
    SEARCH = "search"
    BREAK_GLASS = "break_glass"
    REVIEW_BREAK_GLASS = "review_break_glass"
    # group case discussions
    SCHEDULE_DISCUSSION = "schedule_discussion"  # on a Team: its managers
    RUN_DISCUSSION = "run_discussion"  # start, move through, change, sign off: the team's managers
    JOIN_DISCUSSION = "join_discussion"  # the team's members


#: What each action is, as the access log's readers say it ("Tried to …" on a refusal).
ACTION_LABELS = {
    Action.LIST_CASES: "list cases",
    Action.VIEW_CASE: "open a case",
    Action.ADD_NOTE: "add a note",
    Action.ADD_PERSON: "add or change a family member",
    Action.EDIT_PLAN: "change the family's plan",
    Action.CLOSE_CASE: "close a case",
    Action.VIEW_NOTE: "open a note",
    Action.EDIT_NOTE: "change a draft note",
    Action.FINALISE_NOTE: "finalise a note",
    Action.AMEND_NOTE: "add an addendum",
    Action.VIEW_TEAM: "open a team's page",
    Action.CREATE_CASE: "open a new case",
    Action.MANAGE_ORGANISATION: "manage agencies, teams or accounts",
    Action.MANAGE_CASE_ACCESS: "manage who may see a case",
    Action.DECIDE_TRANSFER: "decide a transfer",
    Action.SHARE_NOTE: "change who may read a sealed note",
    Action.VIEW_NOTE_HISTORY: "open a note's history",
    Action.EXPORT_CASE: "download a case record",
    Action.SEARCH: "search",
    Action.BREAK_GLASS: "open emergency access",
    Action.REVIEW_BREAK_GLASS: "review emergency access",
    Action.SCHEDULE_DISCUSSION: "schedule a group case discussion",
    Action.RUN_DISCUSSION: "run a group case discussion",
    Action.JOIN_DISCUSSION: "join a group case discussion",
}


class Source(enum.StrEnum):
    """Why someone has access to a case (shown to the team manager)."""

    TEAM = "team"  # a member of the allocated team
    HANDOVER = "handover"  # a member of the team that handed the case over, read-only
    KEYWORKER = "keyworker"
    BREAK_GLASS = "break_glass"
    GRANT = "grant"  # a per-user row with no grant behind it (none are made today)


class NoteLevel(enum.Enum):
    FULL = "full"
    PLACEHOLDER = "placeholder"
    HIDDEN = "hidden"


@dataclass(frozen=True, slots=True)
class NoteFacts:
    """What `note_level` reads of a note, without the note: the level of each of a long
    record's notes is decided from these (one light query), and only the notes a page
    shows are then loaded. Same names as CaseNote's, so the one decision serves both."""

    pk: int
    case_id: int
    author_id: int
    state: str
    sensitivity: str
    restricted_agency_id: int | None
    author_agency_id: int
    viewer_is_reader: bool

    @property
    def is_final(self) -> bool:
        return self.state == CaseNote.State.FINAL

    @property
    def audience_agency_id(self) -> int:
        return self.restricted_agency_id or self.author_agency_id


class NotFound(Http404):
    """Raised for a missing object and a forbidden one alike."""

    def __init__(self, what: str = "Page"):
        super().__init__(f"{what} not found")


@dataclass(frozen=True)
class CaseAccess:
    """What one user may do on one case, decided once and passed along."""

    user: object
    case: Case
    permissions: frozenset[str]
    membership: Membership | None
    sources: frozenset[str] = frozenset()
    #: When this access ends by itself (None: while the relationship lasts).
    expires_at: datetime.datetime | None = None
    #: The break-glass grant in use when emergency access is the only way in.
    break_glass_id: int | None = None

    @property
    def is_break_glass(self) -> bool:
        return self.break_glass_id is not None

    @property
    def can_view(self) -> bool:
        return VIEW_CASE in self.permissions

    @property
    def can_contribute(self) -> bool:
        """May add to the record. Whether the case is open is a rule of the actions,
        which refuse writes to a closed case with a message, not a permission."""
        return CONTRIBUTE in self.permissions

    @property
    def agency_id(self) -> int | None:
        return self.membership.agency_id if self.membership else None

    @property
    def is_case_manager(self) -> bool:
        m = self.membership
        return bool(
            m and m.role == Role.TEAM_MANAGER and m.team_id == self.case.allocated_team_id
        )

    @functools.cached_property
    def actor(self) -> Actor:
        """Who acts, as the audit trail remembers them: worked out once per access (a
        live connection audits every delivery as this actor)."""
        actor = actor_for(self.user, self.membership)
        if self.break_glass_id is not None:
            actor = dataclasses.replace(actor, break_glass_id=self.break_glass_id)
        return actor


def _assemble_access(user, case: Case, memberships: dict[int, Membership],
                     team_rows: list, user_rows: list) -> CaseAccess | None:
    """One case's access from the user's active memberships (by team group id), the
    case's unexpired team rows (group id, codename, expiry) and the user's own unexpired
    rows (codename, expiry, grant id, grant kind)."""
    perms: set[str] = set()
    sources: set[str] = set()
    view_ends: list[datetime.datetime | None] = []
    granting: Membership | None = None
    for group_id, codename, expires_at in team_rows:
        perms.add(codename)
        sources.add(Source.TEAM if expires_at is None else Source.HANDOVER)
        if codename == VIEW_CASE:
            view_ends.append(expires_at)
        candidate = memberships[group_id]
        if granting is None or candidate.team_id == case.allocated_team_id:
            granting = candidate
    break_glass_id = None
    for codename, expires_at, grant_id, kind in user_rows:
        perms.add(codename)
        if codename == VIEW_CASE:
            view_ends.append(expires_at)
        if kind == CaseGrant.Kind.BREAK_GLASS:
            sources.add(Source.BREAK_GLASS)
            break_glass_id = grant_id
        else:
            sources.add(Source.KEYWORKER if kind == CaseGrant.Kind.KEYWORKER else Source.GRANT)
    if VIEW_CASE not in perms:
        return None
    if sources != {Source.BREAK_GLASS}:
        break_glass_id = None  # emergency access adds nothing to a real relationship
    else:
        perms = {VIEW_CASE}  # read-only, whatever else a row might say
    if granting is None and memberships:
        granting = next(iter(memberships.values()))
    expires = None if None in view_ends else max(view_ends)
    return CaseAccess(user=user, case=case, permissions=frozenset(perms), membership=granting,
                      sources=frozenset(sources), expires_at=expires,
                      break_glass_id=break_glass_id)


def _unexpired(now: datetime.datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


# The two permission queries of every case access, prepared (workspace.prepared): the
# rows of the user's teams' groups, and the user's own rows from a grant not ended.
_TEAM_ROWS = Prepared(
    lambda now, cases, groups: CaseGroupObjectPermission.objects.filter(
        _unexpired(now), content_object_id__in=cases, group_id__in=groups,
    ).values_list("content_object_id", "group_id", "permission__codename", "expires_at"),
    now=DateTime, cases=Ints, groups=Ints,
)
_USER_ROWS = Prepared(
    lambda now, cases, user_id: CaseUserObjectPermission.objects.filter(
        _unexpired(now), Q(grant__isnull=True) | Q(grant__ended_at__isnull=True),
        content_object_id__in=cases, user_id=user_id,
    ).values_list("content_object_id", "permission__codename", "expires_at", "grant_id",
                  "grant__kind"),
    now=DateTime, cases=Ints, user_id=Int,
)


class Policy:
    # --- cases ---------------------------------------------------------------
    def case_access(self, user, case: Case) -> CaseAccess | None:
        """The user's access to `case`, or None. Fails closed."""
        return self.case_accesses(user, [case])[case.pk]

    def case_accesses(self, user, cases) -> dict[int, CaseAccess | None]:
        """The user's access to each of `cases` by case id (None: no access), in three
        queries however many cases. Fails closed: any error denies them all."""
        cases = list(cases)
        try:
            return self._case_accesses(user, cases)
        except Exception:
            logger.exception("permission check failed; denying")
            return dict.fromkeys((case.pk for case in cases), None)

    def _case_accesses(self, user, cases: list[Case]) -> dict[int, CaseAccess | None]:
        found: dict[int, CaseAccess | None] = dict.fromkeys(case.pk for case in cases)
        if not cases or user is None or not user.is_authenticated or not user.is_active:
            return found
        now = timezone.now()
        memberships = {m.team.group_id: m for m in active_case_memberships(user)}
        team_rows: dict[int, list] = {pk: [] for pk in found}
        for case_id, *row in _TEAM_ROWS.rows(now=now, cases=list(found), groups=list(memberships)):
            team_rows[case_id].append(row)
        user_rows: dict[int, list] = {pk: [] for pk in found}
        for case_id, *row in _USER_ROWS.rows(now=now, cases=list(found), user_id=user.pk):
            user_rows[case_id].append(row)
        for case in cases:
            found[case.pk] = _assemble_access(user, case, memberships, team_rows[case.pk],
                                              user_rows[case.pk])
        return found

    def visible_cases(self, user, queryset: QuerySet | None = None) -> QuerySet:
        """The cases `user` may see, as one query."""
        queryset = Case.objects.all() if queryset is None else queryset
        try:
            if user is None or not user.is_authenticated or not user.is_active:
                return queryset.none()
            # A subquery, not a list read now: the whole answer is one query.
            group_ids = (
                Membership.objects.case_working(timezone.localdate())
                .filter(user=user)
                .values("team__group_id")
            )
            unexpired = _unexpired(timezone.now())
            # One subquery of case ids (a UNION), not an OR of two EXISTS: PostgreSQL
            # reads only the user's cases instead of every case (docs/performance.md).
            via_team = CaseGroupObjectPermission.objects.filter(
                unexpired, group_id__in=group_ids, permission__codename=VIEW_CASE,
            ).values_list("content_object_id", flat=True)
            via_grant = CaseUserObjectPermission.objects.filter(
                unexpired, Q(grant__isnull=True) | Q(grant__ended_at__isnull=True),
                user=user, permission__codename=VIEW_CASE,
            ).values_list("content_object_id", flat=True)
            return queryset.filter(pk__in=via_team.union(via_grant))
        except Exception:
            logger.exception("permission check failed; denying")
            return queryset.none()

    def joinable_discussions(self, user, queryset: QuerySet | None = None) -> QuerySet:
        """The group case discussions `user` may join (JOIN_DISCUSSION: those of the teams
        they work cases in), as one query."""
        queryset = Discussion.objects.all() if queryset is None else queryset
        try:
            if user is None or not user.is_authenticated or not user.is_active:
                return queryset.none()
            team_ids = (Membership.objects.case_working(timezone.localdate())
                        .filter(user=user).values("team_id"))
            return queryset.filter(team_id__in=team_ids)
        except Exception:
            logger.exception("permission check failed; denying")
            return queryset.none()

    # --- notes ---------------------------------------------------------------
    def visible_notes(self, access: CaseAccess, queryset: QuerySet | None = None) -> QuerySet:
        """Notes of the case the user may know exist: full or placeholder, never hidden.

        Each row is annotated with `viewer_is_reader` so `note_level` asks no more queries.
        """
        queryset = access.case.notes.all() if queryset is None else queryset
        user = access.user
        is_reader = CaseNote.readers.through.objects.filter(
            casenote_id=OuterRef("pk"), user_id=user.pk
        )
        return (
            queryset.filter(case=access.case)
            .annotate(viewer_is_reader=Exists(is_reader))
            .filter(
                Q(author=user)
                | Q(state=CaseNote.State.FINAL)
                & (~Q(sensitivity=CaseNote.Sensitivity.SEALED) | Q(viewer_is_reader=True))
            )
        )

    def note_levels(self, access: CaseAccess, notes: QuerySet) -> list[tuple[int, NoteLevel]]:
        """(note id, level) for each of `notes` (a `visible_notes` queryset, in its
        order) in one light query: the facts `note_level` reads, not the notes."""
        rows = notes.values_list("pk", "case_id", "author_id", "state", "sensitivity",
                                 "restricted_agency_id", "author_agency_id", "viewer_is_reader")
        # A level follows from a note's facts, not its id, and a long record repeats a
        # few combinations of them thousands of times: each is decided once.
        decided: dict[tuple, NoteLevel] = {}
        levels = []
        for pk, *facts in rows:
            key = tuple(facts)
            level = decided.get(key)
            if level is None:
                level = decided[key] = self.note_level(access, NoteFacts(pk, *facts))
            levels.append((pk, level))
        return levels

    def note_level(self, access: CaseAccess | None, note: CaseNote) -> NoteLevel:
        try:
            return self._note_level(access, note)
        except Exception:
            logger.exception("permission check failed; denying")
            return NoteLevel.HIDDEN

    def _note_level(self, access: CaseAccess | None, note: CaseNote) -> NoteLevel:
        if access is None or not access.can_view or note.case_id != access.case.pk:
            return NoteLevel.HIDDEN
        user = access.user
        if note.author_id == user.pk:
            return NoteLevel.FULL
        if not note.is_final:
            return NoteLevel.HIDDEN
        S = CaseNote.Sensitivity
        if note.sensitivity == S.STANDARD:
            return NoteLevel.FULL
        if note.sensitivity == S.AGENCY_RESTRICTED:
            if access.is_break_glass:
                return NoteLevel.PLACEHOLDER  # emergency access: standard content only
            if access.is_case_manager or (
                access.agency_id is not None and access.agency_id == note.audience_agency_id
            ):
                return NoteLevel.FULL
            return NoteLevel.PLACEHOLDER
        if note.sensitivity == S.SEALED:
            if access.is_break_glass:
                return NoteLevel.HIDDEN
            is_reader = getattr(note, "viewer_is_reader", None)
            if is_reader is None:
                is_reader = note.readers.filter(pk=user.pk).exists()
            return NoteLevel.FULL if is_reader else NoteLevel.HIDDEN
        return NoteLevel.HIDDEN

    # --- the single question ---------------------------------------------------
    def can(self, user, action: Action, obj=None) -> bool:
        """May `user` do `action` on `obj`? Any error answers no."""
        try:
            return self._can(user, action, obj)
        except Exception:
            logger.exception("permission check failed; denying")
            return False

    def _can(self, user, action: Action, obj) -> bool:
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if action == Action.MANAGE_ORGANISATION:
            return is_administrator(user)
        if action in (Action.LIST_CASES, Action.SEARCH):
            return True  # each answers only with what the user may see
        if action == Action.REVIEW_BREAK_GLASS:
            return is_ig_officer(user)
        if isinstance(obj, CaseTransfer):
            if action != Action.DECIDE_TRANSFER or not obj.is_open:
                return False
            return any(m.role == Role.TEAM_MANAGER and m.team_id == obj.to_team_id
                       for m in active_case_memberships(user))
        if action == Action.BREAK_GLASS:
            return (isinstance(obj, Case) and bool(active_case_memberships(user))
                    and self.case_access(user, obj) is None)
        if isinstance(obj, Team):
            team_roles = {m.role for m in active_case_memberships(user) if m.team_id == obj.pk}
            if action == Action.VIEW_TEAM:
                return bool(team_roles)
            if action in (Action.CREATE_CASE, Action.SCHEDULE_DISCUSSION):
                return Role.TEAM_MANAGER in team_roles
            return False
        if isinstance(obj, Discussion):
            team_roles = {m.role for m in active_case_memberships(user) if m.team_id == obj.team_id}
            if obj.status == Discussion.Status.CANCELLED and action != Action.JOIN_DISCUSSION:
                return False
            if action == Action.JOIN_DISCUSSION:
                return bool(team_roles)
            if action == Action.RUN_DISCUSSION:
                return Role.TEAM_MANAGER in team_roles
            return False
        access = obj if isinstance(obj, CaseAccess) else None
        if isinstance(obj, Case):
            access = self.case_access(user, obj)
        if isinstance(obj, CaseNote):
            access = self.case_access(user, obj.case)
            return self.can_on_note(access, action, obj)
        if access is None:
            return False
        return {
            Action.VIEW_CASE: access.can_view,
            Action.ADD_NOTE: access.can_contribute,
            Action.ADD_PERSON: access.can_contribute,
            # Written by the team together, as the family's notes are.
            Action.EDIT_PLAN: access.can_contribute,
            Action.CLOSE_CASE: access.can_contribute and access.is_case_manager,
            Action.MANAGE_CASE_ACCESS: access.can_contribute and access.is_case_manager,
            # Emergency access is for reading in an emergency, not for taking copies.
            Action.EXPORT_CASE: access.can_view and not access.is_break_glass,
        }.get(action, False)

    def can_on_note(self, access: CaseAccess | None, action: Action, note: CaseNote) -> bool:
        level = self.note_level(access, note)
        if level != NoteLevel.FULL:
            return False
        is_author_draft = note.author_id == access.user.pk and not note.is_final
        is_own_sealed = (note.author_id == access.user.pk and note.is_final
                         and note.sensitivity == CaseNote.Sensitivity.SEALED)
        return {
            Action.VIEW_NOTE: True,
            Action.VIEW_NOTE_HISTORY: True,
            Action.SHARE_NOTE: is_own_sealed and access.can_contribute,
            Action.EDIT_NOTE: is_author_draft and access.can_contribute,
            Action.FINALISE_NOTE: is_author_draft and access.can_contribute,
            Action.AMEND_NOTE: note.is_final and access.can_contribute,
        }.get(action, False)

    # --- access_* : the object, or one error for missing and forbidden alike -------
    def access_case(self, user, case_id, action: Action = Action.VIEW_CASE) -> CaseAccess:
        case = Case.objects.select_related("allocated_team").filter(pk=as_id(case_id)).first()
        access = self.case_access(user, case) if case else None
        if access is None or not self.can(user, action, access):
            self.record_denied(user, "case", case_id, case.pk if case else None, action)
            raise NotFound("Case")
        return access

    def access_note(self, access: CaseAccess, note_id, action: Action = Action.VIEW_NOTE) -> CaseNote:
        note = (
            self.visible_notes(access)
            .select_related("author", "author_agency")
            .filter(pk=as_id(note_id))
            .first()
        )
        if note is None or not self.can_on_note(access, action, note):
            self.record_denied(access.user, "note", note_id, access.case.pk, action, access)
            raise NotFound("Note")
        return note

    def access_team(self, user, team_id, action: Action = Action.VIEW_TEAM) -> Team:
        team = Team.objects.filter(pk=as_id(team_id)).first()
        if team is None or not self.can(user, action, team):
            self.record_denied(user, "team", team_id, None, action)
            raise NotFound("Team")
        return team

    def access_transfer(self, user, transfer_id, action: Action = Action.DECIDE_TRANSFER):
        """A transfer request the user may act on: decide it (the receiving team's
        manager) or withdraw it (the manager of the team the case is with)."""
        transfer = (CaseTransfer.objects.select_related("case", "from_team", "to_team")
                    .filter(pk=as_id(transfer_id)).first())
        allowed = transfer is not None and (
            self.can(user, action, transfer) if action == Action.DECIDE_TRANSFER
            else self.can(user, action, transfer.case)
        )
        if not allowed:
            self.record_denied(user, "transfer", transfer_id,
                               transfer.case_id if transfer else None, action)
            raise NotFound("Transfer request")
        return transfer

    # --- group case discussions ---------------------------------------------------
    def discussion_case_access(self, user, case: Case) -> CaseAccess | None:
        """Access to an agenda item's case within a discussion: a real relationship to
        the case, never emergency access (a meeting is no emergency). Without it a
        participant sees the item's reference only."""
        return self.discussion_case_accesses(user, [case])[case.pk]

    def discussion_case_accesses(self, user, cases) -> dict[int, CaseAccess | None]:
        """`discussion_case_access` for each of `cases` by case id, in three queries."""
        return {case_id: None if access is None or access.is_break_glass else access
                for case_id, access in self.case_accesses(user, cases).items()}

    def access_discussion(self, user, discussion_id, action: Action = Action.JOIN_DISCUSSION):
        discussion = (Discussion.objects.select_related("team", "chair")
                      .filter(pk=as_id(discussion_id)).first())
        if discussion is None or not self.can(user, action, discussion):
            self.record_denied(user, "discussion", discussion_id, None, action)
            raise NotFound("Discussion")
        return discussion

    def access_agreed_action(self, user, action_id) -> tuple[AgreedAction, CaseAccess]:
        """A signed-off action its owner (or a manager of the discussion's team) may
        mark done, with the case access that allows it."""
        agreed = (AgreedAction.objects.select_related("item__case", "item__discussion", "owner")
                  .filter(pk=as_id(action_id)).exclude(state=AgreedAction.State.PROPOSED).first())
        access = self.discussion_case_access(user, agreed.item.case) if agreed else None
        allowed = access is not None and access.can_contribute and (
            agreed.owner_id == user.pk
            or self.can(user, Action.RUN_DISCUSSION, agreed.item.discussion))
        if not allowed:
            self.record_denied(user, "action", action_id, agreed.item.case_id if agreed else None,
                               "complete_action", access)
            raise NotFound("Action")
        return agreed, access

    def record_denied(self, user, object_type, object_id, case_id, action, access=None):
        """The audit entry for a refused attempt (HTTP or live)."""
        try:
            actor = access.actor if access else actor_for(user)
        except Exception:
            # The lookup that failed the check may fail here too; the denial is
            # still recorded, with what is known of the user.
            logger.exception("actor lookup failed; recording the denial without it")
            actor = Actor(user_id=getattr(user, "pk", None),
                          label=getattr(user, "get_username", lambda: "anonymous")())
        record(
            actor=actor,
            action=AuditAction.ACCESS_DENIED,
            outcome=Outcome.DENIED,
            object_type=object_type,
            object_id=object_id,
            case_id=case_id,
            reason=str(action),
        )


policy = Policy()
