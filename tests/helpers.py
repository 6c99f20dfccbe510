"""Assertions shared by the tests: the audit rows and history rows a write leaves, the
proof that a refused write changed nothing, and an error summary's links."""

from __future__ import annotations

from html.parser import HTMLParser

from django.db.models import Max

from audit.models import AuditAction, AuditEvent, Outcome


class AuditWatch:
    """The audit entries written since the watch started."""

    def __init__(self):
        self.start = AuditEvent.objects.aggregate(m=Max("id"))["m"] or 0

    def new(self):
        return list(AuditEvent.objects.filter(id__gt=self.start).order_by("id"))

    def actions(self) -> list[AuditAction]:
        return [AuditAction(e.action) for e in self.new()]

    def one(self, action: AuditAction) -> AuditEvent:
        rows = [e for e in self.new() if e.action == action]
        assert len(rows) == 1, f"expected one {action.name} entry, got {len(rows)}"
        return rows[0]


def assert_audit(
    event: AuditEvent, *, action: AuditAction, actor, case_id=None, object_type: str | None = None,
    object_id=None, outcome: Outcome = Outcome.ALLOWED,
) -> None:
    assert event.action == action
    assert event.outcome == outcome
    assert event.actor_id == (actor.pk if actor is not None else None)
    assert event.case_id == case_id
    if object_type is not None:
        assert event.object_type == object_type
    if object_id is not None:
        assert event.object_id == str(object_id)


def assert_history(instance, *, user, history_type: str) -> None:
    """The newest history row of `instance` names `user` and is of `history_type`."""
    latest = instance.history.order_by("-history_id").first()
    assert latest is not None, f"no history for {instance!r}"
    assert latest.history_type == history_type
    assert latest.history_user_id == (user.pk if user is not None else None)


def write_fingerprint() -> dict:
    """Every row a case or note write could touch, for 'a refused write changed nothing'."""
    from casenotes.models import Addendum, Case, CaseNote, CasePlan, Person

    return {
        "notes": list(CaseNote.objects.order_by("pk").values_list(
            "pk", "version", "state", "body", "sensitivity", "occurred_at", "note_type")),
        "note_people": list(CaseNote.people.through.objects.order_by("pk").values_list(
            "casenote_id", "person_id")),
        "note_readers": list(CaseNote.readers.through.objects.order_by("pk").values_list(
            "casenote_id", "user_id")),
        "addenda": list(Addendum.objects.order_by("pk").values_list("pk", "body")),
        "people": list(Person.objects.order_by("pk").values_list(
            "pk", "full_name", "role_in_family", "date_of_birth", "specialist_agency_id")),
        "cases": list(Case.objects.order_by("pk").values_list("pk", "status", "closed_on",
                                                              "category")),
        "plans": list(CasePlan.objects.order_by("pk").values_list(
            "pk", "version", "worries", "strengths", "next_steps", "contingency", "review_on")),
        "history": (
            CaseNote.history.model.objects.count(), Addendum.history.model.objects.count(),
            Person.history.model.objects.count(), Case.history.model.objects.count(),
            CasePlan.history.model.objects.count(),
        ),
        "audit": AuditEvent.objects.count(),
    }


class _SummaryLinks(HTMLParser):
    """The error summary's links, and the ids of what a person can be taken to (any
    element but a hidden input)."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.targets: set[str] = set()
        self.in_summary = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "govuk-error-summary__list" in (attrs.get("class") or ""):
            self.in_summary = 1
        elif self.in_summary and tag == "ul":
            self.in_summary += 1
        if self.in_summary and tag == "a" and (attrs.get("href") or "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if attrs.get("id") and not (tag == "input" and attrs.get("type") == "hidden"):
            self.targets.add(attrs["id"])

    def handle_endtag(self, tag):
        if self.in_summary and tag == "ul":
            self.in_summary -= 1


def dead_summary_links(html: str) -> list[str]:
    """Links in the error summary that lead nowhere a person can see."""
    parser = _SummaryLinks()
    parser.feed(html)
    return [link for link in parser.links if link not in parser.targets]
