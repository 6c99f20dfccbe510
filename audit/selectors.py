"""Reads of the audit trail for information governance. Every one is itself audited.

Only IG officers reach these (audit/views.py asks the policy first). They read the
access log and the records' metadata (references, names of the people in a case, who
acted); note bodies only through the explicit subject access request.
"""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit.actions import record
from audit.models import AuditAction, AuditEvent, Outcome
from teams.selectors import actor_for


@dataclass(frozen=True)
class LogFilter:
    """A validated search of the access log (audit/forms.py builds it)."""

    user_id: int | None = None
    case_ids: tuple[int, ...] | None = None  # None: any case; (): matches nothing
    action: int | None = None
    outcome: str = ""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None  # exclusive
    break_glass_id: int | None = None

    def describe(self) -> str:
        parts = []
        if self.user_id is not None:
            parts.append(f"user {self.user_id}")
        if self.case_ids is not None:
            parts.append(f"cases {list(self.case_ids)[:10]}")
        if self.action is not None:
            parts.append(f"action {self.action}")
        if self.outcome:
            parts.append(f"outcome {self.outcome}")
        if self.since:
            parts.append(f"from {self.since:%Y-%m-%d %H:%M}")
        if self.until:
            parts.append(f"before {self.until:%Y-%m-%d %H:%M}")
        if self.break_glass_id is not None:
            parts.append(f"break-glass {self.break_glass_id}")
        return ", ".join(parts) or "everything"


def _filtered(spec: LogFilter):
    entries = AuditEvent.objects.all()
    if spec.user_id is not None:
        entries = entries.filter(actor_id=spec.user_id)
    if spec.case_ids is not None:
        entries = entries.filter(case_id__in=spec.case_ids)
    if spec.action is not None:
        entries = entries.filter(action=spec.action)
    if spec.outcome:
        entries = entries.filter(outcome=spec.outcome)
    if spec.since is not None:
        entries = entries.filter(occurred_at__gte=spec.since)
    if spec.until is not None:
        entries = entries.filter(occurred_at__lt=spec.until)
    if spec.break_glass_id is not None:
        entries = entries.filter(break_glass_id=spec.break_glass_id)
    return entries.order_by("-occurred_at", "-id")


def _with_references(entries: list[AuditEvent]) -> list[AuditEvent]:
    """Each entry given what the officer reads instead of numbers: its case's reference
    (`case_reference`) and, for an entry about a person, an account or a team, its name
    (`object_name`). One query for each kind named on the page, whatever its length."""
    from django.contrib.auth import get_user_model

    from casenotes.models import Case, Person
    from casenotes.permissions import ACTION_LABELS
    from teams.models import Team

    references = dict(Case.objects.filter(pk__in={e.case_id for e in entries if e.case_id})
                      .values_list("pk", "reference"))
    named = {"person": (Person, "full_name"), "user": (get_user_model(), "username"),
             "team": (Team, "name")}
    names = {}
    for object_type, (model, column) in named.items():
        ids = {int(e.object_id) for e in entries
               if e.object_type == object_type and e.object_id.isdigit()}
        if ids:
            names[object_type] = dict(model.objects.filter(pk__in=ids).values_list("pk", column))
    for entry in entries:
        # A refusal records what was tried as the policy names it; say it in words.
        tried = (ACTION_LABELS.get(entry.reason) if entry.action == AuditAction.ACCESS_DENIED
                 else None)
        entry.reason_text = f"Tried to {tried}" if tried else entry.reason
        entry.case_reference = references.get(entry.case_id, "")
        entry.object_name = (names.get(entry.object_type, {}).get(int(entry.object_id), "")
                             if entry.object_id.isdigit() else "")
    return entries


def search_log(user, spec: LogFilter, *, page: int = 1) -> dict:
    """One page of matching entries, newest first. Keyset-free but bounded: the count
    is capped so a search over millions of rows stays quick."""
    size = settings.IG_PAGE_SIZE
    entries = _filtered(spec)
    page = max(1, page)
    rows = list(entries[(page - 1) * size: page * size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    record(actor=actor_for(user), action=AuditAction.AUDIT_SEARCHED, object_type="audit",
           reason=f"{spec.describe()}; page {page}")
    return {"entries": _with_references(rows), "page": page, "has_next": has_next,
            "has_previous": page > 1}


def export_log(user, spec: LogFilter) -> list[AuditEvent]:
    rows = list(_filtered(spec)[: settings.IG_EXPORT_LIMIT])
    record(actor=actor_for(user), action=AuditAction.AUDIT_EXPORTED, object_type="audit",
           reason=f"{spec.describe()}; {len(rows)} entries")
    return rows


def case_report(user, case, *, person=None) -> dict:
    """Who opened this family's record (or this child's): every entry on the case, and
    the people who made them, with first and last access."""
    entries = AuditEvent.objects.filter(case_id=case.pk)
    if person is not None:
        # This child's record: reads of the case as a whole, of this person, and of the
        # notes about them.
        from audit.sar import about_person
        from casenotes.models import CaseNote

        note_ids = [str(i) for i in CaseNote.objects.filter(people=person)
                    .values_list("pk", flat=True)]
        entries = entries.filter(about_person(person.pk, note_ids))
    who = list(entries.filter(actor_id__isnull=False).values("actor_id", "actor_label",
                                                               "agency_label", "role_label")
               .annotate(times=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
               .order_by("actor_label"))
    record(actor=actor_for(user), action=AuditAction.AUDIT_REPORT_VIEWED, object_type="case",
           object_id=case.pk, case_id=case.pk,
           reason=f"who accessed{' ' + person.full_name if person else ''}")
    return {"case": case, "person": person, "who": who,
            "entries": _with_references(list(entries.order_by("-occurred_at", "-id")[:500]))}


def user_report(user, subject, *, since=None, until=None) -> dict:
    """What one person accessed: the cases they touched, and every entry."""
    spec = LogFilter(user_id=subject.pk, since=since, until=until)
    entries = _filtered(spec)
    cases = list(entries.filter(case_id__isnull=False).values("case_id")
                 .annotate(times=Count("id"), last=Max("occurred_at")).order_by("-last"))
    from casenotes.models import Case

    references = dict(Case.objects.filter(pk__in=[c["case_id"] for c in cases])
                      .values_list("pk", "reference"))
    for row in cases:
        row["reference"] = references.get(row["case_id"], "(removed)")
    record(actor=actor_for(user), action=AuditAction.AUDIT_REPORT_VIEWED, object_type="user",
           object_id=subject.pk, reason=f"what {subject.get_username()} accessed")
    return {"subject": subject, "cases": cases, "entries": _with_references(list(entries[:500])),
            "since": since, "until": until}


# --- alerts --------------------------------------------------------------------------------

_CASE_READS = [AuditAction.CASE_VIEWED, AuditAction.NOTE_VIEWED, AuditAction.LIVE_JOINED,
               AuditAction.CASE_EXPORTED, AuditAction.NOTE_HISTORY_VIEWED,
               AuditAction.ADMIN_CASE_DATA_VIEWED]


@dataclass
class OutOfHours:
    """The reads one person made of one case on one day outside working hours."""

    actor_id: int | None
    actor_label: str
    case_id: int | None
    first: datetime.datetime
    last: datetime.datetime
    entry_ids: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def add(self, entry: AuditEvent, local: datetime.datetime) -> None:
        self.entry_ids.append(entry.pk)
        self.first, self.last = min(self.first, local), max(self.last, local)
        what = entry.get_action_display().lower()
        if what not in self.actions:
            self.actions.append(what)


def alerts(user, *, days: int = 7) -> dict:
    """Patterns IG should look at, over the last `days`: emergency access (off the
    caseload), many distinct cases in one hour, case access outside working hours, and
    bursts of refused attempts. Thresholds are settings."""
    since = timezone.now() - datetime.timedelta(days=days)
    recent = AuditEvent.objects.filter(occurred_at__gte=since)
    off_caseload = list(recent.filter(action=AuditAction.BREAK_GLASS_OPENED)
                        .order_by("-occurred_at")[:200])
    many_cases = list(
        recent.filter(action__in=_CASE_READS, case_id__isnull=False)
        .annotate(hour=TruncHour("occurred_at"))
        .values("actor_id", "actor_label", "hour")
        .annotate(cases=Count("case_id", distinct=True))
        .filter(cases__gt=settings.IG_ALERT_CASES_PER_HOUR).order_by("-hour")[:200]
    )
    start, end = settings.IG_WORKING_HOURS
    reads = recent.filter(action__in=_CASE_READS).order_by("-occurred_at")
    # One line per person, case and day, not per entry: an evening's work on one
    # family is one thing to look at, however many pages it took.
    groups: dict[tuple, OutOfHours] = {}
    for entry in reads.only("id", "occurred_at", "actor_id", "actor_label", "case_id",
                            "action")[:5000]:
        local = timezone.localtime(entry.occurred_at)
        if local.weekday() >= 5 or not start <= local.hour < end:
            key = (entry.actor_id, entry.actor_label, entry.case_id, local.date())
            group = groups.get(key)
            if group is None:
                if len(groups) >= 200:
                    continue
                group = groups[key] = OutOfHours(actor_id=entry.actor_id,
                                                 actor_label=entry.actor_label,
                                                 case_id=entry.case_id, first=local, last=local)
            group.add(entry, local)
    out_of_hours = list(groups.values())
    from casenotes.models import Case

    references = dict(Case.objects.filter(
        pk__in={g.case_id for g in out_of_hours} | {e.case_id for e in off_caseload}
    ).values_list("pk", "reference"))
    for item in [*out_of_hours, *off_caseload]:
        item.case_reference = references.get(item.case_id, "")
    denied = list(
        recent.filter(outcome=Outcome.DENIED)
        .annotate(hour=TruncHour("occurred_at"))
        .values("actor_id", "actor_label", "hour")
        .annotate(times=Count("id"))
        .filter(times__gte=settings.IG_ALERT_DENIED_BURST).order_by("-hour")[:200]
    )
    record(actor=actor_for(user), action=AuditAction.ALERTS_VIEWED, object_type="audit",
           reason=f"last {days} days")
    return {"days": days, "off_caseload": off_caseload, "many_cases": many_cases,
            "out_of_hours": out_of_hours, "denied": denied,
            "thresholds": {"cases": settings.IG_ALERT_CASES_PER_HOUR,
                           "denied": settings.IG_ALERT_DENIED_BURST,
                           "hours": settings.IG_WORKING_HOURS}}


def find_user(username: str):
    return get_user_model().objects.filter(username__iexact=username.strip()).first()


def cases_matching(text: str):
    """A case by reference, or the cases of people whose name matches."""
    from casenotes.models import Case, Person

    text = text.strip()
    by_reference = list(Case.objects.filter(reference__iexact=text).values_list("pk", flat=True))
    if by_reference:
        return by_reference
    return list(Person.objects.filter(Q(full_name__icontains=text))
                .values_list("case_id", flat=True).distinct()[:50])


#: A subject search needs this many characters, and shows at most this many people.
SAR_QUERY_MIN, SAR_RESULTS_MAX = 3, 50


def sar_candidates(user, query: str) -> list:
    """The people whose name contains `query`, for choosing the subject of an access
    request: name, date of birth and case reference only. It lists people of any case,
    so it is audited like any search (which people were shown), before it returns."""
    from casenotes.models import Person

    if len(query) < SAR_QUERY_MIN:
        return []
    people = list(Person.objects.filter(full_name__icontains=query)
                  .select_related("case").order_by("full_name")[:SAR_RESULTS_MAX])
    record(actor=actor_for(user), action=AuditAction.SEARCHED, object_type="sar_search",
           reason=f"subject access search: {len(people)} people shown "
                  f"{sorted(p.pk for p in people)[:40]}")
    return people
