"""Subject access requests: everything held about one person, and who accessed it.

The only way an IG officer reads note bodies: an explicit, audited action, for one
person, with the request's reference. Names of other people in the family found in
the text are marked for redaction review; nothing from any other case is included.
"""

import re

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from audit.actions import record
from audit.models import AuditAction, AuditEvent
from teams.selectors import actor_for


def _name_pattern(names: list[str]):
    """Whole names and their parts (first names, surnames) of the other people, longest
    first, matched as whole words, case-insensitively."""
    parts = set()
    for name in names:
        parts.add(name)
        parts.update(p for p in name.split() if len(p) >= 3)
    if not parts:
        return None
    ordered = sorted(parts, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(p) for p in ordered) + r")\b", re.IGNORECASE)


def _marked(text: str, pattern) -> tuple[str, list[str]]:
    """HTML with third-party names in <mark>, and the names found."""
    if pattern is None:
        return escape(text), []
    found, out, last = [], [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(f'<mark class="app-redact">{escape(match.group(0))}</mark>')
        found.append(match.group(0))
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out)), sorted(set(found), key=str.lower)  # noqa: S308 (escaped above)


def subject_access(user, person, *, reference: str) -> dict:
    from casenotes.models import Addendum, CaseNote

    case = person.case
    others = [p.full_name for p in case.people.exclude(pk=person.pk)]
    pattern = _name_pattern(others)
    notes = list(CaseNote.objects.filter(people=person).select_related("author", "author_agency")
                 .prefetch_related("people").order_by("occurred_at", "id"))
    # Notes that name the person without being marked as about them are theirs too,
    # for the officer to review: a visit note about a child that says what the adult did.
    named = _named_only(case, person, exclude=[n.pk for n in notes])
    named_ids = {n.pk for n in named}
    notes = sorted(notes + named, key=lambda n: (n.occurred_at, n.pk))
    addenda = {}
    for addendum in Addendum.objects.filter(note__in=notes).select_related("author", "author_agency"):
        addenda.setdefault(addendum.note_id, []).append(addendum)
    versions = {}
    for version in CaseNote.history.model.objects.filter(id__in=[n.pk for n in notes]) \
            .select_related("history_user").order_by("history_date", "history_id"):
        versions.setdefault(version.id, []).append(version)
    note_rows = []
    for note in notes:
        if note.pk in named_ids and note.sensitivity == CaseNote.Sensitivity.SEALED:
            # A sealed note about someone else that names this person (a victim's new
            # address, say): listed, its text not included; the officer asks its author.
            note_rows.append(_withheld(note))
            continue
        body, names = _marked(note.body, pattern)
        about_others = [p.full_name for p in note.people.all() if p.pk != person.pk]
        note_rows.append({
            "id": note.pk, "type": note.get_note_type_display(), "state": note.get_state_display(),
            "occurred_at": note.occurred_at, "author": note.author.get_full_name(),
            "agency": note.author_agency.name, "sensitivity": note.get_sensitivity_display(),
            "body_html": body, "body": note.body,
            "third_party_names": sorted(set(names) | set(about_others), key=str.lower),
            "review": note.sensitivity != CaseNote.Sensitivity.STANDARD,
            "named_only": note.pk in named_ids,
            "addenda": [{"created_at": a.created_at, "author": a.author.get_full_name(),
                         "agency": a.author_agency.name, "body": a.body,
                         "body_html": _marked(a.body, pattern)[0],
                         "third_party_names": _marked(a.body, pattern)[1]}
                        for a in addenda.get(note.pk, [])],
            "versions": [{"at": v.history_date, "by": v.history_user.get_full_name()
                          if v.history_user else "", "type": v.history_type, "body": v.body,
                          "state": v.get_state_display()}
                         for v in versions.get(note.pk, [])],
        })
    plan = _plan(case, pattern)
    note_ids = [str(n.pk) for n in notes]
    accessed = list(
        AuditEvent.objects.filter(case_id=case.pk)
        .filter(about_person(person.pk, note_ids))
        .order_by("occurred_at", "id")
        .values("occurred_at", "actor_label", "agency_label", "role_label", "action",
                "object_type", "object_id", "outcome")
    )
    labels = dict(AuditAction.choices)
    for row in accessed:
        row["action"] = labels.get(row["action"], row["action"])
    record(actor=actor_for(user), action=AuditAction.SAR_PRODUCED, object_type="person",
           object_id=person.pk, case_id=case.pk, reason=f"SAR {reference}")
    return {
        "reference": reference, "produced_at": timezone.now(),
        "person": {"id": person.pk, "name": person.full_name, "date_of_birth": person.date_of_birth,
                   "role_in_family": person.get_role_in_family_display()},
        "case": {"reference": case.reference, "status": case.get_status_display(),
                 "category": case.get_category_display(), "team": case.allocated_team.name,
                 "opened_on": case.opened_on, "closed_on": case.closed_on},
        "person_history": [{"at": v.history_date, "type": v.history_type,
                            "name": v.full_name, "date_of_birth": v.date_of_birth}
                           for v in person.history.order_by("history_date")],
        "plan": plan,
        "notes": note_rows,
        "accessed": accessed,
        "third_party_names": sorted(others, key=str.lower),
    }


def _plan_parts(source, pattern) -> list[dict]:
    """A plan's (or one version's) parts, other people's names marked."""
    from casenotes.models import CasePlan

    parts = []
    for name, heading in CasePlan.SECTIONS:
        text = getattr(source, name)
        text_html, names = _marked(text, pattern)
        parts.append({"heading": heading, "text": text, "text_html": text_html,
                      "third_party_names": names})
    return parts


def _plan(case, pattern) -> dict | None:
    """The family's plan, which is about everyone in it: its parts as saved now and
    every earlier version's (text a later version removed is still held), each with
    other people's names marked, and who saved each version and when."""
    from casenotes.models import CasePlan

    plan = CasePlan.objects.filter(case=case).first()
    if plan is None:
        return None
    return {
        "review_on": plan.review_on, "parts": _plan_parts(plan, pattern),
        "versions": [{"at": v.history_date, "by": v.history_user.get_full_name()
                      if v.history_user else "", "version": v.version,
                      "review_on": v.review_on, "parts": _plan_parts(v, pattern)}
                     for v in plan.history.select_related("history_user")
                     .order_by("history_date", "history_id")],
    }


def _withheld(note) -> dict:
    """A sealed note that names the person without being about them, without its text."""
    return {"id": note.pk, "type": note.get_note_type_display(), "state": note.get_state_display(),
            "occurred_at": note.occurred_at, "author": note.author.get_full_name(),
            "agency": note.author_agency.name, "sensitivity": note.get_sensitivity_display(),
            "body_html": "", "body": "", "withheld": True, "third_party_names": [],
            "review": True, "named_only": True, "addenda": [], "versions": []}


def _named_only(case, person, *, exclude: list[int]) -> list:
    """The case's finalised notes not marked as about `person` whose text, or an
    addendum's, names them: their full name (in any case), or their first name as it is
    written, capitalised (not "will" for Will, nor the surname alone, which a family
    shares). Drafts are not part of the record and are left out."""
    from casenotes.models import CaseNote

    parts = person.full_name.split()
    first = parts[0] if parts and len(parts[0]) >= 3 else ""
    full = re.compile(r"\b" + re.escape(person.full_name) + r"\b", re.IGNORECASE)
    given = re.compile(r"\b" + re.escape(first) + r"\b") if first else None

    def names(text: str) -> bool:
        return bool(full.search(text) or (given and given.search(text)))

    candidates = (CaseNote.objects.filter(case=case, state=CaseNote.State.FINAL)
                  .exclude(pk__in=exclude).select_related("author", "author_agency")
                  .prefetch_related("people", "addenda"))
    return [note for note in candidates
            if names(note.body) or any(names(a.body) for a in note.addenda.all())]


def about_person(person_id: int, note_ids: list[str]):
    """Entries about the whole case (page views, exports, the live room, the family's
    plan) and about this person or the notes about them."""
    from django.db.models import Q

    return (Q(object_type="case") | Q(object_type="plan")
            | Q(object_type="person", object_id=str(person_id))
            | Q(object_type="note", object_id__in=note_ids))


def as_json(data: dict) -> dict:
    """The same, for download: no HTML, dates as ISO 8601."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if not k.endswith("_html")}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return value
    return plain(data)
