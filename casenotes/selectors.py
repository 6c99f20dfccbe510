"""Reads of case data that need care: each goes through the policy and leaves its
audit entry."""

import datetime
import itertools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateformat import format as date_format

from audit.actions import record
from audit.models import AuditAction
from casenotes import events
from casenotes.models import (
    NOTE_HISTORY,
    Addendum,
    Case,
    CaseGrant,
    CaseGroupObjectPermission,
    CaseNote,
    CasePlan,
    CaseTransfer,
    CaseVisit,
    Person,
    plan_review_state,
)
from casenotes.permissions import CaseAccess, NoteLevel, policy
from casenotes.rules import moment_text
from teams.models import Membership, Role
from teams.selectors import active_case_memberships, actor_for, team_members


def _last_activity():
    # Sealed notes and drafts never move "last activity": their timing is theirs.
    return Max("notes__created_at", filter=Q(notes__state=CaseNote.State.FINAL)
               & ~Q(notes__sensitivity=CaseNote.Sensitivity.SEALED))


def _plan_review_on():
    return Subquery(CasePlan.objects.filter(case=OuterRef("pk")).values("review_on")[:1])


def caseload(user):
    """The cases `user` may see, with the latest activity each shows them."""
    cases = (
        policy.visible_cases(user)
        .filter(status="open")
        .select_related("allocated_team", "lead_practitioner")
        .annotate(seen_at=Subquery(
            CaseVisit.objects.filter(case=OuterRef("pk"), user=user).values("seen_at")[:1]),
            plan_review_on=_plan_review_on(),
            # Changed by someone else since the person last opened the case.
            plan_changed=Exists(CasePlan.objects.filter(
                case=OuterRef("pk"), updated_at__gt=OuterRef("seen_at")).exclude(
                updated_by=user)))
        .annotate(last_activity=_last_activity(), new_notes=Count(
            # Finalised since the person last opened the case, by someone else; sealed
            # notes, as for last activity, are left out.
            "notes",
            filter=Q(notes__state=CaseNote.State.FINAL)
            & ~Q(notes__sensitivity=CaseNote.Sensitivity.SEALED)
            & ~Q(notes__author=user) & Q(notes__finalised_at__gt=F("seen_at")),
        ))
        .order_by("family_name", "reference")
    )
    cases = list(cases)
    # A case open to the user only through emergency access is marked as such (the
    # policy's own answer, in a fixed number of queries).
    accesses = policy.case_accesses(user, cases)
    for case in cases:
        case.plan_review = plan_review_state(case.plan_review_on)
        access = accesses.get(case.pk)
        case.emergency_access = bool(access and access.is_break_glass)
        # Handed over to another team: readable for a while, nothing can be added.
        case.read_only = bool(access and not access.is_break_glass and not access.can_contribute)
    record(actor=actor_for(user), action=AuditAction.CASELOAD_VIEWED, object_type="caseload",
           reason=f"{len(cases)} cases listed")
    return cases


def team_cases(user, team) -> list[Case]:
    """The team's open cases `user` may see, each with its lead practitioner, legal
    basis, whether it has a plan and when that is reviewed, and its latest activity
    (read under the team page's own entry)."""
    cases = list(
        policy.visible_cases(user, team.cases.filter(status="open"))
        .select_related("lead_practitioner")
        .annotate(plan_review_on=_plan_review_on(),
                  has_plan=Exists(CasePlan.objects.filter(case=OuterRef("pk"))),
                  last_activity=_last_activity())
        .order_by("family_name", "reference"))
    for case in cases:
        case.plan_review = plan_review_state(case.plan_review_on)
    return cases


def unfinished_drafts(case: Case) -> list[tuple[str, int]]:
    """Who has unfinished drafts on `case`, and how many (for its manager, before
    closing it: a closed case takes no more notes). Names and counts only, never a
    draft's type or text; read under the page's own entry."""
    authors = (CaseNote.objects.filter(case=case, state=CaseNote.State.DRAFT)
               .values("author__first_name", "author__last_name", "author__username")
               .annotate(drafts=Count("pk")).order_by("author__last_name", "author__first_name"))
    return [(f"{a['author__first_name']} {a['author__last_name']}".strip()
             or a["author__username"], a["drafts"]) for a in authors]


def my_drafts(user, cases: list[Case]) -> list[CaseNote]:
    """The user's own unfinished drafts on the open cases of their caseload, most
    recently saved first (one query; read with the caseload, whose entry records it)."""
    return list(CaseNote.objects.filter(author=user, state=CaseNote.State.DRAFT,
                                        case__in=[c.pk for c in cases])
                .select_related("case").order_by("-updated_at", "-pk"))


@dataclass(frozen=True)
class NoteFormData:
    """What the note form shows besides the note: who a sealed note can be shared with
    (`readers`, a queryset for the form's field) and the case team's members today
    (`members`, read once, for its hints)."""

    readers: QuerySet
    members: list[Membership]


def note_form(access: CaseAccess, note: CaseNote | None = None, *,
              page: str = "") -> NoteFormData:
    """The note form's data (the allocated team's members, who a sealed note can be
    shared with). Opening the form reads the family's names, so it is audited like any
    read of case data; `page` names a page other than the note form that shows it."""
    members = team_members(access.case.allocated_team)
    readers = get_user_model().objects.filter(pk__in=[m.user_id for m in members]).exclude(
        pk=access.user.pk).order_by("first_name", "last_name")
    record(actor=access.actor, action=AuditAction.NOTE_FORM_VIEWED,
           object_type="note" if note else "case", object_id=note.pk if note else access.case.pk,
           case_id=access.case.pk, reason=page)
    return NoteFormData(readers=readers, members=members)


def case_page(access: CaseAccess, *, note_type: str = "", person=None, words: str = "",
              page=1) -> dict:
    """One page of the case record's notes, newest first, as this viewer may see them.

    Which notes the viewer sees, and as what, is decided over the whole case from the
    few columns the policy reads (one query), so every page but the last is full and
    its count is exact; only the page's own notes are then read in full (one more)."""
    case = access.case
    notes = policy.visible_notes(access).order_by("-occurred_at", "-id")
    if note_type:
        notes = notes.filter(note_type=note_type)
    if person is not None:
        notes = notes.filter(people=person)
    if words:
        notes = notes.filter(Q(body__icontains=words) | Exists(
            Addendum.objects.filter(note=OuterRef("pk"), body__icontains=words)))
    filtered = bool(note_type or person or words)
    # A placeholder must not answer "what type?", "about whom?" or "does it say this?":
    # under a filter, only notes the viewer may read in full can match.
    shown = NoteLevel.FULL if filtered else NoteLevel.PLACEHOLDER
    listed = [(pk, level == NoteLevel.FULL) for pk, level in policy.note_levels(access, notes)
              if level == NoteLevel.FULL or level == shown]
    paginator = Paginator(listed, settings.CASE_NOTES_PER_PAGE, allow_empty_first_page=True)
    page = paginator.get_page(page)
    # The page's notes in full, through the policy again: a note whose sharing changed
    # in between is shown as it stands now, or not at all.
    on_page = {note.pk: note for note in events.with_entry_data(policy.visible_notes(
        access, CaseNote.objects.filter(pk__in=[pk for pk, _ in page.object_list])))}
    entries = []
    for pk, _ in page.object_list:
        note = on_page.get(pk)
        level = policy.note_level(access, note) if note is not None else NoteLevel.HIDDEN
        if level == NoteLevel.FULL or level == shown:
            entries.append((note, level == NoteLevel.FULL))
    people = list(case.people.all())
    record(actor=access.actor, action=AuditAction.CASE_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk,
           reason=(f"notes page {page.number} of {paginator.num_pages}" if paginator.count
                   else "no notes") + ("; filtered" if filtered else ""))
    return {
        # (note, readable in full?) — placeholders carry agency and date only.
        "entries": entries,
        "notes_page": page,
        "page_numbers": list(paginator.get_elided_page_range(page.number, on_each_side=2,
                                                             on_ends=1)),
        "children": [p for p in people if p.is_child],
        "adults": [p for p in people if not p.is_child],
        "members": team_members(case.allocated_team),
        "last_seq": events.last_seq(case.pk),
    }


def note_page(access: CaseAccess, note: CaseNote) -> dict:
    addenda = list(
        Addendum.objects.filter(note=note).select_related("author", "author_agency")
    )
    record(actor=access.actor, action=AuditAction.NOTE_VIEWED, object_type="note",
           object_id=note.pk, case_id=note.case_id)
    return {"addenda": addenda, "people": list(note.people.all()),
            "readers": list(note.readers.all())}


# --- chronology -------------------------------------------------------------------------

@dataclass(frozen=True)
class ChronologyEntry:
    """One line of a chronology: a significant note, or an event of the case itself.
    `at` is None for what is known by its day only (a birth, the day a case opened or
    closed); those open or end their day."""

    day: datetime.date
    at: datetime.datetime | None
    what: str
    note: CaseNote | None = None
    _order: int = 1

    @property
    def sort_key(self):
        return (self.day, self._order, self.at or datetime.datetime.min.replace(tzinfo=datetime.UTC))


def _chronology_entries(access: CaseAccess, person: Person | None) -> list[ChronologyEntry]:
    """The case's significant events, oldest first: each finalised significant note the
    viewer may read in full, the children's births, and the case's opening, changes of
    legal basis, transfers and closing. A note the viewer would see only as a placeholder
    is left out (its significance is part of what they may not know), as on the filtered
    case page."""
    case = access.case
    notes = (_with_addenda(events.with_entry_data(policy.visible_notes(access)))
             .filter(is_significant=True, state=CaseNote.State.FINAL))
    if person is not None:
        notes = notes.filter(people=person)
    entries = [ChronologyEntry(day=timezone.localdate(note.occurred_at), at=note.occurred_at,
                               what=note.get_note_type_display(), note=note)
               for note in notes if policy.note_level(access, note) == NoteLevel.FULL]
    for someone in case.people.all():
        if someone.is_child and someone.date_of_birth and person in (None, someone):
            entries.append(ChronologyEntry(day=someone.date_of_birth, at=None,
                                           what=f"{someone.full_name} born", _order=0))
    moves = list(case.transfers.filter(status=CaseTransfer.Status.ACCEPTED, decided_at__isnull=False)
                 .select_related("from_team", "to_team").order_by("decided_at", "pk"))
    first_team = moves[0].from_team if moves else case.allocated_team
    labels = {value: label.lower() for value, label in Case.Category.choices}
    bases = list(case.history.order_by("history_date", "history_id")
                 .values_list("category", "history_date", "category_reason"))
    opened_as = bases[0][0] if bases else case.category
    entries.append(ChronologyEntry(
        day=case.opened_on, at=None, _order=0,
        what=f"Case opened ({labels.get(opened_as, opened_as)}), allocated to {first_team.name}"))
    entries += [ChronologyEntry(day=timezone.localdate(when), at=when,
                                what=f"Legal basis changed from {labels.get(before, before)} "
                                     f"to {labels.get(after, after)}" + (f": {why}" if why else ""))
                for (before, _, _), (after, when, why) in itertools.pairwise(bases)
                if after != before]
    entries += [ChronologyEntry(day=timezone.localdate(move.decided_at), at=move.decided_at,
                                what=f"Case transferred from {move.from_team.name} to {move.to_team.name}")
                for move in moves]
    if case.closed_on is not None:
        entries.append(ChronologyEntry(day=case.closed_on, at=None, what="Case closed", _order=2))
    entries.sort(key=lambda entry: entry.sort_key)
    return entries


def chronology(access: CaseAccess, *, person: Person | None = None) -> dict:
    """The chronology page (see _chronology_entries)."""
    entries = _chronology_entries(access, person)
    record(actor=access.actor, action=AuditAction.CHRONOLOGY_VIEWED, object_type="case",
           object_id=access.case.pk, case_id=access.case.pk,
           reason=f"about person {person.pk}" if person else "")
    return {"entries": entries}


def chronology_export(access: CaseAccess, *, person: Person | None = None) -> list[dict]:
    """The chronology as CSV rows, recorded as an export of the case record."""
    entries = _chronology_entries(access, person)
    rows = [{
        "when": (timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M") if entry.at
                 else entry.day.isoformat()),
        "what": entry.what,
        "about": ", ".join(p.full_name for p in entry.note.people.all()) if entry.note else "",
        "by": entry.note.author.get_full_name() if entry.note else "The case record",
        "agency": entry.note.author_agency.short_name if entry.note else "",
        "note": entry.note.body if entry.note else "",
        "addenda": _addenda_text(entry.note) if entry.note else "",
    } for entry in entries]
    about = f", about person {person.pk}" if person else ""
    record(actor=access.actor, action=AuditAction.CASE_EXPORTED, object_type="case",
           object_id=access.case.pk, case_id=access.case.pk,
           reason=f"chronology: {len(rows)} events{about}")
    return rows


# --- access governance ----------------------------------------------------------------

def access_list(access: CaseAccess) -> dict:
    """Who may open this case and why, with end dates (for its team manager)."""
    case = access.case
    now = timezone.now()
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    team_rows = (CaseGroupObjectPermission.objects.filter(unexpired, content_object=case,
                                                          permission__codename="view_case")
                 .select_related("group__team"))
    handovers = []
    for row in team_rows:
        team = row.group.team
        if row.expires_at is not None:
            handovers.append({"team": team, "members": team_members(team),
                              "until": row.expires_at})
    grants = list(
        CaseGrant.objects.filter(case=case, ended_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("user", "granted_by").order_by("kind", "starts_at")
    )
    record(actor=access.actor, action=AuditAction.CASE_ACCESS_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk)
    return {
        "history": access_history(access),
        "members": team_members(case.allocated_team),
        "handovers": handovers,
        "keyworkers": [g for g in grants if g.kind == CaseGrant.Kind.KEYWORKER],
        "emergency": [g for g in grants if g.kind == CaseGrant.Kind.BREAK_GLASS],
        "transfers": list(case.transfers.select_related("to_team", "requested_by")[:10]),
    }


def keyworker_candidates(case):
    """Practitioners who may be added as keyworkers: anyone working cases today who is
    not in the allocated team."""
    in_team = Membership.objects.case_working().filter(team=case.allocated_team).values("user_id")
    working = Membership.objects.case_working().values("user_id")
    return (get_user_model().objects.filter(pk__in=working).exclude(pk__in=in_team)
            .order_by("first_name", "last_name"))


def search(user, query: str) -> dict:
    """Cases and people matching `query` that `user` may see, and, for a practitioner,
    people in other cases they could open in an emergency (name, date of birth and
    reference only). A fixed number of queries, whatever the number of cases."""
    limit = settings.SEARCH_LIMIT
    matches_case = Q(reference__iexact=query) | Q(family_name__icontains=query)
    visible = policy.visible_cases(user)
    cases = list(visible.filter(matches_case).select_related("allocated_team")
                 .order_by("family_name", "reference")[:limit])
    people = list(Person.objects.filter(case__in=visible.values("pk"), full_name__icontains=query)
                  .select_related("case").order_by("full_name")[:limit])
    candidates = []
    if active_case_memberships(user):  # practitioners only may ask for emergency access
        hidden = (Person.objects.exclude(case__in=visible.values("pk"))
                  .filter(Q(full_name__icontains=query) | Q(case_id=Subquery(
                      Case.objects.filter(reference__iexact=query).values("pk")[:1])))
                  .select_related("case").order_by("full_name", "date_of_birth"))
        candidates = [
            {"name": p.full_name, "date_of_birth": p.date_of_birth,
             "reference": p.case.reference, "case_id": p.case_id}
            for p in hidden[:limit]
        ]
    shown = sorted({c.pk for c in cases} | {p.case_id for p in people})
    record(actor=actor_for(user), action=AuditAction.SEARCHED, object_type="search",
           reason=f"{len(cases)} cases, {len(people)} people, {len(candidates)} emergency "
                  f"candidates; cases shown {shown[:40]}")
    return {"cases": cases, "people": people, "candidates": candidates, "limit": limit}


def transfers_for(user) -> dict:
    """Open requests to and from the teams `user` manages (the reference and family name
    only: the receiving manager has no access to the case until they accept)."""
    managed = [m.team_id for m in active_case_memberships(user) if m.role == Role.TEAM_MANAGER]
    base = CaseTransfer.objects.select_related("case", "from_team", "to_team", "requested_by")
    incoming = list(base.filter(to_team_id__in=managed, status=CaseTransfer.Status.REQUESTED))
    outgoing = list(base.filter(from_team_id__in=managed, status=CaseTransfer.Status.REQUESTED))
    recent = list(base.filter(Q(to_team_id__in=managed) | Q(from_team_id__in=managed))
                  .exclude(status=CaseTransfer.Status.REQUESTED)[:20])
    record(actor=actor_for(user), action=AuditAction.TRANSFERS_VIEWED, object_type="transfers",
           reason=f"{len(incoming)} incoming, {len(outgoing)} outgoing")
    return {"incoming": incoming, "outgoing": outgoing, "recent": recent,
            "manages": bool(managed)}


def case_form(access: CaseAccess, form: str, *, person: Person | None = None) -> dict:
    """What a form about a case shows besides its fields: the case's reference and family
    name (and the person's name, for a form about one of them). Opening it reads them,
    so it is audited like any read of case data; `form` says which."""
    record(actor=access.actor, action=AuditAction.CASE_FORM_VIEWED,
           object_type="person" if person else "case",
           object_id=person.pk if person else access.case.pk, case_id=access.case.pk,
           reason=form)
    return {"access": access, "case": access.case, **({"person": person} if person else {})}


def break_glass_form(user, case: Case) -> dict:
    """The emergency access form, for someone off the case: the reference only (the
    family's details are what the access is for), and that read is audited too."""
    record(actor=actor_for(user), action=AuditAction.CASE_FORM_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk, reason="emergency access form")
    return {"reference": case.reference, "case_id": case.pk}


def transfer_page(user, transfer: CaseTransfer) -> dict:
    record(actor=actor_for(user), action=AuditAction.TRANSFERS_VIEWED, object_type="transfer",
           object_id=transfer.pk, case_id=transfer.case_id)
    return {"transfer": transfer, "case": transfer.case}


_HISTORY_FIELDS = [("note_type", "Type"), ("occurred_at", "When it happened"), ("body", "Note"),
                   ("sensitivity", "Who may read it"), ("is_significant", "Significant event"),
                   ("state", "State")]


def note_history(access: CaseAccess, note: CaseNote) -> list[dict]:
    """Every version of a note, newest first, with what changed from the one before.
    A draft is its author's alone, so for anyone else the history begins at the version
    that finalised it: what was written while it was a draft (perhaps sealed, or for
    another agency) is not shown to those who may read the final note."""
    versions = list(note.history.select_related("history_user").order_by("history_date",
                                                                        "history_id"))
    if note.author_id != access.user.pk:
        final_from = next((i for i, v in enumerate(versions) if v.state == CaseNote.State.FINAL),
                          len(versions))
        versions = versions[final_from:]
    links: dict[str, dict[int, list[int]]] = {"people": {}, "readers": {}}
    for field, model in NOTE_HISTORY.m2m_models.items():
        target = "person_id" if field.name == "people" else "user_id"
        for history_id, linked in model.objects.filter(history__in=versions).values_list(
                "history_id", target):
            links[field.name].setdefault(history_id, []).append(linked)
    people = {p.pk: p.full_name for p in Person.objects.filter(case_id=note.case_id)}
    reader_ids = {u for ids in links["readers"].values() for u in ids}
    user_names = {u.pk: u.get_full_name() or u.get_username()
                  for u in get_user_model().objects.filter(pk__in=reader_ids)}
    rows, previous = [], None
    previous_about: list[str] = []
    previous_readers: list[str] = []
    for version in versions:
        about = sorted(people.get(i, "?") for i in links["people"].get(version.history_id, []))
        readers = sorted(user_names.get(i, "?") for i in links["readers"].get(version.history_id, []))
        changes = []
        for field, label in _HISTORY_FIELDS:
            old = getattr(previous, field) if previous else None
            new = getattr(version, field)
            if previous is None or old != new:
                changes.append({"label": label, "old": _shown(previous, field, old),
                                "new": _shown(version, field, new)})
        for label, old, new in (("About", previous_about, about),
                                ("Named readers", previous_readers, readers)):
            if previous is None or old != new:
                changes.append({"label": label,
                                "old": (", ".join(old) or "None") if previous else None,
                                "new": ", ".join(new) or "None"})
        rows.append({"version": version, "changes": changes})
        previous, previous_about, previous_readers = version, about, readers
    record(actor=access.actor, action=AuditAction.NOTE_HISTORY_VIEWED, object_type="note",
           object_id=note.pk, case_id=note.case_id)
    rows.reverse()
    return rows


def _shown(version, field, value):
    if version is None:
        return None
    display = getattr(version, f"get_{field}_display", None)
    if display is not None:
        return display()
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if field == "occurred_at":
        return timezone.localtime(value).strftime("%-d %b %Y %H:%M")
    return value


def _with_addenda(notes):
    """Notes with their addenda (author and agency too) read in one more query."""
    return notes.prefetch_related(Prefetch(
        "addenda", queryset=Addendum.objects.select_related("author", "author_agency")))


def _addenda_text(note: CaseNote) -> str:
    """A note's addenda, oldest first, each with when and by whom, for a download."""
    return "\n\n".join(
        f"Addendum {timezone.localtime(a.created_at):%Y-%m-%d %H:%M}, "
        f"{a.author.get_full_name() or a.author.get_username()} ({a.author_agency.short_name}): "
        f"{a.body}" for a in note.addenda.all())


def case_export(access: CaseAccess) -> list[dict]:
    """The case record as this user may read it, for a CSV download: full notes in full,
    placeholders as placeholders, hidden notes not at all."""
    notes = _with_addenda(events.with_entry_data(policy.visible_notes(access))).order_by(
        "occurred_at", "id")
    rows = []
    for note in notes:
        level = policy.note_level(access, note)
        full = level == NoteLevel.FULL
        rows.append({
            "occurred_at": timezone.localtime(note.occurred_at).strftime("%Y-%m-%d %H:%M"),
            "type": note.get_note_type_display() if full else "Restricted note",
            "author": note.author.get_full_name() if full else "",
            "agency": note.author_agency.short_name,
            "state": note.get_state_display(),
            "body": note.body if full else "",
            # A placeholder says neither whom a note is about nor whether it is significant.
            "significant": ("Yes" if note.is_significant else "No") if full else "",
            "about": ", ".join(p.full_name for p in note.people.all()) if full else "",
            # The corrections are part of the record: a note leaves with its addenda.
            "addenda": _addenda_text(note) if full else "",
        })
    record(actor=access.actor, action=AuditAction.CASE_EXPORTED, object_type="case",
           object_id=access.case.pk, case_id=access.case.pk, reason=f"{len(rows)} notes")
    return rows


def emergency_access_awaiting_review() -> int:
    """How many uses of emergency access information governance has yet to review (a
    count, for their start page: no case is named)."""
    return CaseGrant.objects.filter(kind=CaseGrant.Kind.BREAK_GLASS,
                                    review=CaseGrant.Review.PENDING).count()


def break_glass_queue(user, *, page: int = 1, per_page: int = 50) -> dict:
    grants = (CaseGrant.objects.filter(kind=CaseGrant.Kind.BREAK_GLASS)
              .select_related("user", "case").order_by("-starts_at", "-id"))
    total = grants.count()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    items = list(grants[(page - 1) * per_page: page * per_page])
    record(actor=actor_for(user), action=AuditAction.BREAK_GLASS_QUEUE_VIEWED,
           object_type="break_glass", reason=f"page {page} of {pages}")
    return {"grants": items, "page": page, "pages": pages, "total": total, "now": timezone.now()}


# --- history of the record itself -------------------------------------------------------------

def versions_with_changes(history_qs, labels: dict[str, str], title) -> list[dict]:
    """Each version (oldest first in the diff, newest first in the result) with the
    fields it changed, old and new, by their display labels."""
    versions = list(history_qs.select_related("history_user").order_by("history_date", "history_id"))
    rows, previous = [], None
    for version in versions:
        changes = []
        if previous is None:
            changes = [{"label": label, "old": None, "new": _display(version, field)}
                       for field, label in labels.items()]
        else:
            delta = version.diff_against(previous, included_fields=list(labels))
            changes = [{"label": labels[c.field], "old": _display(previous, c.field),
                        "new": _display(version, c.field)} for c in delta.changes]
        rows.append({"title": title(version), "version": version, "changes": changes})
        previous = version
    return rows


#: History fields that hold when access ends (`rules.moment_text`).
_END_FIELDS = {"expires_at", "handover_ends_at"}


def _display(version, field):
    display = getattr(version, f"get_{field}_display", None)
    if display is not None:
        return display()
    value = getattr(version, field, None)
    if isinstance(value, datetime.datetime):
        # An end of access given as a day ends at its close; any other moment as it is.
        if field in _END_FIELDS:
            return moment_text(value)
        return date_format(timezone.localtime(value), "j M Y, H:i")
    if isinstance(value, datetime.date):
        return date_format(value, "j M Y")
    if hasattr(value, "get_full_name"):
        return value.get_full_name() or value.get_username()
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "—"
    return str(value)


_CASE_FIELDS = {"reference": "Reference", "family_name": "Family name", "status": "Status",
                "category": "Category", "category_reason": "Why the legal basis changed",
                "allocated_team": "Allocated team",
                "lead_practitioner": "Lead practitioner", "opened_on": "Opened",
                "closed_on": "Closed"}
_PERSON_FIELDS = {"full_name": "Name", "date_of_birth": "Date of birth",
                  "role_in_family": "Role in the family", "specialist_agency": "Specialist agency"}


def case_plan(access: CaseAccess, purpose: str) -> dict:
    """The family's plan as saved now (None before its first save), for its page or
    its form (`purpose`); reading it is audited like any read of case data."""
    plan = CasePlan.objects.select_related("updated_by").filter(case=access.case).first()
    record(actor=access.actor, action=AuditAction.PLAN_VIEWED,
           object_type="plan" if plan else "case", object_id=plan.pk if plan else access.case.pk,
           case_id=access.case.pk, reason=purpose)
    return {"access": access, "case": access.case, "plan": plan}


def plan_summary(case: Case) -> CasePlan | None:
    """When the plan was last changed, by whom, and its review date (for the case
    page, whose own read is audited as the case viewed)."""
    return (CasePlan.objects.select_related("updated_by").filter(case=case)
            .only("case_id", "review_on", "version", "updated_at", "updated_by").first())


def case_history(access: CaseAccess) -> dict:
    """Every version of the case record, of each person in it and of the family's plan,
    with who changed what."""
    case = access.case
    entries = versions_with_changes(case.history.all(), _CASE_FIELDS, lambda v: "Case record")
    for person in case.people.all():
        entries += versions_with_changes(person.history.all(), _PERSON_FIELDS,
                                          lambda v, name=person.full_name: name)
    entries += versions_with_changes(CasePlan.history.filter(case_id=case.pk), CasePlan.LABELS,
                                     lambda v: "Family plan")
    entries.sort(key=lambda e: (e["version"].history_date, e["version"].history_id), reverse=True)
    record(actor=access.actor, action=AuditAction.CASE_HISTORY_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk)
    return {"entries": entries}


_GRANT_FIELDS = {"user": "Person", "kind": "Kind", "reason_code": "Reason", "reason": "Details",
                 "expires_at": "Ends", "ended_at": "Ended", "review": "IG review"}
_TRANSFER_FIELDS = {"to_team": "To", "status": "Status", "reason": "Reason",
                    "decision_reason": "Decision", "handover_ends_at": "Hand-over ends"}


_ALLOCATION_FIELDS = {"allocated_team": "Allocated team", "lead_practitioner": "Lead practitioner"}


def access_history(access: CaseAccess) -> list[dict]:
    """Every version of the case's grants and transfers, and every change of its
    allocated team or lead practitioner (for its team manager)."""
    case = access.case
    entries = [row for row in versions_with_changes(case.history.all(), _ALLOCATION_FIELDS,
                                                    lambda v: "Allocation")
               if row["changes"]]
    for grant in case.grants.all():
        entries += versions_with_changes(grant.history.all(), _GRANT_FIELDS,
                                          lambda v, g=grant: g.get_kind_display())
    for transfer in case.transfers.all():
        entries += versions_with_changes(transfer.history.all(), _TRANSFER_FIELDS,
                                          lambda v: "Transfer request")
    entries.sort(key=lambda e: (e["version"].history_date, e["version"].history_id), reverse=True)
    return entries
