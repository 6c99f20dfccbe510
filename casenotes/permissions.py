"""The permission policy: the one place that says who may see and do what.

Every view, form, list, export and (later) socket consumer asks this module.

Case access follows a legitimate relationship:
- a case's allocated team holds `view_case` and `contribute_to_case` on it through
  the team's group (guardian direct-FK rows, written only by actions);
- a user acts through the team only while their Membership is active, checked here
  at every call, so an ended membership grants nothing from that moment on;
- explicit per-user grants (CaseUserObjectPermission) are honoured as well.

Note content within a visible case:
- standard: everyone with access to the case;
- agency-restricted: the author's agency and the allocated team's manager; others
  see a placeholder with agency and date only;
- sealed: the author and named readers; others see nothing at all;
- drafts: their author only.

No account type bypasses these rules: superusers, administrators and IG officers get
no case content unless a rule above grants it. Any error while deciding denies.
"""

import enum
import logging
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.actions import Actor, record
from audit.models import AuditAction, Outcome
from casenotes.models import Case, CaseGroupObjectPermission, CaseNote, CaseUserObjectPermission
from teams.models import Membership, Role, Team
from teams.selectors import active_case_memberships, actor_for, is_administrator

logger = logging.getLogger(__name__)

VIEW_CASE = "view_case"
CONTRIBUTE = "contribute_to_case"
TEAM_PERMISSIONS = (VIEW_CASE, CONTRIBUTE)


class Action(enum.StrEnum):
    LIST_CASES = "list_cases"
    VIEW_CASE = "view_case"
    ADD_NOTE = "add_note"
    ADD_PERSON = "add_person"
    CLOSE_CASE = "close_case"
    VIEW_NOTE = "view_note"
    EDIT_NOTE = "edit_note"
    FINALISE_NOTE = "finalise_note"
    AMEND_NOTE = "amend_note"
    VIEW_TEAM = "view_team"
    CREATE_CASE = "create_case"
    MANAGE_ORGANISATION = "manage_organisation"


class NoteLevel(enum.Enum):
    FULL = "full"
    PLACEHOLDER = "placeholder"
    HIDDEN = "hidden"


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

    @property
    def actor(self) -> Actor:
        return actor_for(self.user, self.membership)


class Policy:
    # --- cases ---------------------------------------------------------------
    def case_access(self, user, case: Case) -> CaseAccess | None:
        """The user's access to `case`, or None. Fails closed."""
        try:
            return self._case_access(user, case)
        except Exception:
            logger.exception("permission check failed; denying")
            return None

    def _case_access(self, user, case: Case) -> CaseAccess | None:
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        memberships = {m.team.group_id: m for m in active_case_memberships(user)}
        perms: set[str] = set()
        granting: Membership | None = None
        rows = CaseGroupObjectPermission.objects.filter(
            content_object=case, group_id__in=memberships.keys()
        ).values_list("group_id", "permission__codename")
        for group_id, codename in rows:
            perms.add(codename)
            candidate = memberships[group_id]
            if granting is None or candidate.team_id == case.allocated_team_id:
                granting = candidate
        perms.update(
            CaseUserObjectPermission.objects.filter(content_object=case, user=user)
            .values_list("permission__codename", flat=True)
        )
        if VIEW_CASE not in perms:
            return None
        if granting is None and memberships:
            granting = next(iter(memberships.values()))
        return CaseAccess(user=user, case=case, permissions=frozenset(perms), membership=granting)

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
            via_team = CaseGroupObjectPermission.objects.filter(
                content_object=OuterRef("pk"), group_id__in=group_ids,
                permission__codename=VIEW_CASE,
            )
            via_grant = CaseUserObjectPermission.objects.filter(
                content_object=OuterRef("pk"), user=user, permission__codename=VIEW_CASE
            )
            return queryset.filter(Exists(via_team) | Exists(via_grant))
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
            if access.is_case_manager or (
                access.agency_id is not None and access.agency_id == note.author_agency_id
            ):
                return NoteLevel.FULL
            return NoteLevel.PLACEHOLDER
        if note.sensitivity == S.SEALED:
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
        if action == Action.LIST_CASES:
            return True
        if isinstance(obj, Team):
            team_roles = {m.role for m in active_case_memberships(user) if m.team_id == obj.pk}
            if action == Action.VIEW_TEAM:
                return bool(team_roles)
            if action == Action.CREATE_CASE:
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
            Action.CLOSE_CASE: access.can_contribute and access.is_case_manager,
        }.get(action, False)

    def can_on_note(self, access: CaseAccess | None, action: Action, note: CaseNote) -> bool:
        level = self.note_level(access, note)
        if level != NoteLevel.FULL:
            return False
        is_author_draft = note.author_id == access.user.pk and not note.is_final
        return {
            Action.VIEW_NOTE: True,
            Action.EDIT_NOTE: is_author_draft and access.can_contribute,
            Action.FINALISE_NOTE: is_author_draft and access.can_contribute,
            Action.AMEND_NOTE: note.is_final and access.can_contribute,
        }.get(action, False)

    # --- access_* : the object, or one error for missing and forbidden alike -------
    def access_case(self, user, case_id, action: Action = Action.VIEW_CASE) -> CaseAccess:
        case = Case.objects.select_related("allocated_team").filter(pk=_as_id(case_id)).first()
        access = self.case_access(user, case) if case else None
        if access is None or not self.can(user, action, access):
            self.record_denied(user, "case", case_id, case.pk if case else None, action)
            raise NotFound("Case")
        return access

    def access_note(self, access: CaseAccess, note_id, action: Action = Action.VIEW_NOTE) -> CaseNote:
        note = (
            self.visible_notes(access)
            .select_related("author", "author_agency")
            .filter(pk=_as_id(note_id))
            .first()
        )
        if note is None or not self.can_on_note(access, action, note):
            self.record_denied(access.user, "note", note_id, access.case.pk, action, access)
            raise NotFound("Note")
        return note

    def access_team(self, user, team_id, action: Action = Action.VIEW_TEAM) -> Team:
        team = Team.objects.filter(pk=_as_id(team_id)).first()
        if team is None or not self.can(user, action, team):
            self.record_denied(user, "team", team_id, None, action)
            raise NotFound("Team")
        return team

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


def _as_id(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 < number < 2**63 else -1


policy = Policy()
