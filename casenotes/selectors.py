"""Reads of case data that need care: each goes through the policy and leaves its
audit entry."""

from django.contrib.auth import get_user_model
from django.db.models import Max, Q

from audit.actions import record
from audit.models import AuditAction
from casenotes import events
from casenotes.models import Addendum, CaseNote
from casenotes.permissions import CaseAccess, NoteLevel, policy
from teams.selectors import actor_for, team_members


def caseload(user):
    """The cases `user` may see, with the latest activity each shows them."""
    cases = (
        policy.visible_cases(user)
        .filter(status="open")
        .select_related("allocated_team", "lead_practitioner")
        # Sealed notes and drafts never move "last activity": their timing is theirs.
        .annotate(last_activity=Max(
            "notes__created_at",
            filter=Q(notes__state=CaseNote.State.FINAL)
            & ~Q(notes__sensitivity=CaseNote.Sensitivity.SEALED),
        ))
        .order_by("family_name", "reference")
    )
    cases = list(cases)
    record(actor=actor_for(user), action=AuditAction.CASELOAD_VIEWED, object_type="caseload",
           reason=f"{len(cases)} cases listed")
    return cases


def note_form(access: CaseAccess, note: CaseNote | None = None):
    """What the note form shows besides the note: who a sealed note can be shared
    with (the allocated team's members). Opening the form reads the family's names,
    so it is audited like any read of case data."""
    ids = [m.user_id for m in team_members(access.case.allocated_team)]
    readers = get_user_model().objects.filter(pk__in=ids).exclude(pk=access.user.pk).order_by(
        "first_name", "last_name")
    record(actor=access.actor, action=AuditAction.NOTE_FORM_VIEWED,
           object_type="note" if note else "case", object_id=note.pk if note else access.case.pk,
           case_id=access.case.pk)
    return readers


def case_page(access: CaseAccess, *, note_type: str = "", person=None) -> dict:
    case = access.case
    notes = events.with_entry_data(policy.visible_notes(access)).order_by("-occurred_at", "-id")
    if note_type:
        notes = notes.filter(note_type=note_type)
    if person is not None:
        notes = notes.filter(people=person)
    filtered = bool(note_type or person)
    entries = [(note, policy.note_level(access, note)) for note in notes]
    # A placeholder must not answer "what type?" or "about whom?": under a filter,
    # only notes the viewer may read in full can match.
    shown = NoteLevel.FULL if filtered else NoteLevel.PLACEHOLDER
    people = list(case.people.all())
    record(actor=access.actor, action=AuditAction.CASE_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk)
    return {
        # (note, readable in full?) — placeholders carry agency and date only.
        "entries": [(n, level == NoteLevel.FULL) for n, level in entries
                    if level == NoteLevel.FULL or level == shown],
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
