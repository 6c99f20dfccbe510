"""Who receives which live notice, rendered once per audience.

A note event is rendered at most twice (full, placeholder) whatever the number of
viewers, and each rendering goes only to groups whose members may see it:

| note                       | full entry to                                  | placeholder to |
| -------------------------- | ---------------------------------------------- | -------------- |
| draft                      | its author                                     | nobody         |
| standard                   | everyone in the room                           | —              |
| agency-restricted          | author's agency, the team's managers, author   | everyone else* |
| sealed                     | author and named readers                       | nobody         |

*The placeholder goes to the whole room. Placeholders are sent only when a note first
appears as final.

The routing is not the only check. Every note notice also carries the facts the
policy decides a note's level from (`facts`: its case, author, state, sensitivity,
audience agency and, for a sealed note, its readers), and each connection asks
`policy.note_level` of its own current access before it takes one, without a query:
it takes a full entry only at FULL and a placeholder only at PLACEHOLDER. So a viewer
who has the full entry drops the room's placeholder, and a named reader of a sealed
note who now holds only emergency access (standard content only) is sent nothing.

Replay (a client catching up after the number it last saw) goes through the policy
for that one client, in a fixed number of queries.
"""

from dataclasses import dataclass

from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from casenotes.models import CaseEvent, CaseNote
from casenotes.permissions import CaseAccess, NoteFacts, NoteLevel, policy
from workspace import live
from workspace.prepared import Int, Prepared

#: A client that missed more than this many things it may see is told to reload instead.
REPLAY_LIMIT = 200
#: Events looked at in one catch-up (ids only; most may be invisible, e.g. autosaves).
SCAN_LIMIT = 5000

_FIRST_APPEARANCE = {CaseEvent.Kind.NOTE_CREATED, CaseEvent.Kind.NOTE_FINALISED}


def render_entry(note: CaseNote, *, full: bool) -> str:
    return render_to_string("casenotes/_note_entry.html", {"note": note, "full": full,
                                                            "case_id": note.case_id})


def _note_message(event: CaseEvent, note: CaseNote, *, full: bool, readers=()) -> dict:
    return {
        "type": "case.event", "seq": event.seq, "kind": event.kind, "note": note.pk,
        # For placing the entry in date order (as its place on the page already shows);
        # a placeholder's visible text says agency and date only.
        "occurred_at": timezone.localtime(note.occurred_at).isoformat(),
        "level": "full" if full else "placeholder", "html": render_entry(note, full=full),
        "facts": note_facts(note, readers),
    }


def note_facts(note: CaseNote, readers=()) -> dict:
    """What the policy decides a note's level from, for the receiving connection to ask
    it (`level_for`); not sent on to the page. `readers`: a sealed note's named readers."""
    return {"case": note.case_id, "author": note.author_id, "state": note.state,
            "sensitivity": note.sensitivity, "restricted_agency": note.restricted_agency_id,
            "author_agency": note.author_agency_id, "readers": sorted(readers)}


def level_for(access: CaseAccess, message: dict) -> NoteLevel:
    """The level `access` has now on the note of a note notice, from its `facts`; HIDDEN
    for a notice without them (fail closed)."""
    facts = message.get("facts")
    if not facts:
        return NoteLevel.HIDDEN
    return policy.note_level(access, NoteFacts(
        pk=message["note"], case_id=facts["case"], author_id=facts["author"],
        state=facts["state"], sensitivity=facts["sensitivity"],
        restricted_agency_id=facts["restricted_agency"], author_agency_id=facts["author_agency"],
        viewer_is_reader=access.user.pk in facts["readers"]))


def _case_message(event: CaseEvent) -> dict:
    return {"type": "case.event", "seq": event.seq, "kind": event.kind}


def with_entry_data(queryset):
    """What a note entry shows besides the note: author, agency, people, addenda count."""
    return queryset.select_related("author", "author_agency").prefetch_related("people").annotate(
        addenda_count=Count("addenda", distinct=True))


def as_written(note: CaseNote, people) -> CaseNote:
    """A note its action has just created with `people`, made ready to render as
    `with_entry_data` would read it back, without reading what was just written: its
    author and agency are the action's own instances and a new note has no addenda. A
    note about people reads them when it is rendered (one query, in their order).

    Safe whatever else the transaction does before it commits: a draft's notices go to
    its author alone, a final note's content and audience never change, and a sealed
    note's readers are read when it is sent."""
    note.addenda_count = 0
    if not people:
        note._prefetched_objects_cache = {"people": note.people.none()}
    return note


def deliveries(event: CaseEvent, note: CaseNote | None = None) -> list[tuple[str, dict]]:
    """(group, message) pairs for one event; `note`: the event's note as its action
    wrote it (`as_written`), else it is read."""
    case_id = event.case_id
    if event.note_id is None:
        return [(live.case_group(case_id), _case_message(event))]
    if note is None:
        note = with_entry_data(CaseNote.objects.filter(pk=event.note_id)).get()
    full = _note_message(event, note, full=True)
    author = live.viewer_group(case_id, note.author_id)
    if not note.is_final:
        return [(author, full)]
    S = CaseNote.Sensitivity
    if note.sensitivity == S.STANDARD:
        return [(live.case_group(case_id), full)]
    if note.sensitivity == S.AGENCY_RESTRICTED:
        sends = [
            (live.agency_group(case_id, note.audience_agency_id), full),
            (live.managers_group(case_id), full),
            (author, full),
        ]
        if event.kind in _FIRST_APPEARANCE:
            sends.append((live.case_group(case_id), _note_message(event, note, full=False)))
        return sends
    if note.sensitivity == S.SEALED:
        readers = set(note.readers.values_list("pk", flat=True))
        full = _note_message(event, note, full=True, readers=readers)
        return [(live.viewer_group(case_id, user_id), full)
                for user_id in sorted(readers | {note.author_id})]
    return []


def publish(event: CaseEvent, note: CaseNote | None = None) -> None:
    """Send one committed event's notices (called on commit by the actions; an event
    row never changes, so the instance written is the one sent). `note`: as in
    `deliveries`."""
    live.send_many(deliveries(event, note))


# Read by every change of a case (its next number) and every catch-up, so prepared
# (workspace.prepared): the newest number, read from the (case, seq) index.
_LAST_SEQ = Prepared(
    lambda case_id: CaseEvent.objects.filter(case_id=case_id).order_by("-seq").values_list("seq")[:1],
    case_id=Int,
)


def last_seq(case_id: int) -> int:
    """The case's newest event number (0: none yet)."""
    rows = _LAST_SEQ.rows(case_id=case_id)
    return rows[0][0] if rows else 0


@dataclass(frozen=True)
class Replay:
    messages: list[dict]  # what this viewer missed and may see, oldest first
    reload: bool  # too far behind (or ahead): reload the page instead
    checked_to: int  # the last event number looked at, seen or not


def replay(access: CaseAccess, after: int, *, sent=()) -> Replay:
    """What a client that last saw event `after` has missed and may see, each note once
    in its current state. Events this viewer may not see (others' drafts, sealed notes)
    are skipped without counting towards the limit, and `checked_to` moves the client
    past them so they are not looked at again.

    `sent`: event numbers this connection has already been sent. A note whose latest
    event is among them, or a case event among them, is neither read nor rendered
    again, so the periodic catch-up of a connection that missed nothing costs one
    query however busy the room."""
    events = list(
        CaseEvent.objects.filter(case=access.case, seq__gt=after).order_by("seq")
        .only("seq", "kind", "note_id")[: SCAN_LIMIT + 1]
    )
    if len(events) > SCAN_LIMIT:
        return Replay([], True, after)
    if not events and after > last_seq(access.case.pk):
        return Replay([], True, after)  # the page knows events this database does not
    sent = set(sent)
    latest: dict[int, CaseEvent] = {}
    appeared: dict[int, CaseEvent] = {}  # a note's first appearance as final, if in range
    messages: list[tuple[int, dict]] = []
    for event in events:
        if event.note_id is None:
            if event.seq not in sent:
                messages.append((event.seq, _case_message(event)))
        else:
            latest[event.note_id] = event
            if event.kind in _FIRST_APPEARANCE:
                appeared[event.note_id] = event
    latest = {note_id: event for note_id, event in latest.items() if event.seq not in sent}
    notes = {}
    if latest:
        visible = policy.visible_notes(access).filter(pk__in=list(latest))
        notes = {n.pk: n for n in with_entry_data(visible)}
    for note_id, event in latest.items():
        note = notes.get(note_id)
        level = policy.note_level(access, note) if note else NoteLevel.HIDDEN
        if level == NoteLevel.PLACEHOLDER:
            # As live: a placeholder only for the note's first appearance, never for what
            # follows it (an addendum), which would tell those outside its audience more.
            event = appeared.get(note_id)
            if event is None or event.seq in sent:
                continue
        if level != NoteLevel.HIDDEN:
            # This viewer's facts: a sealed note they may read has them among its readers.
            readers = [access.user.pk] if getattr(note, "viewer_is_reader", False) else ()
            messages.append((event.seq, _note_message(event, note, full=level == NoteLevel.FULL,
                                                      readers=readers)))
    if len(messages) > REPLAY_LIMIT:
        return Replay([], True, after)
    ordered = [m for _, m in sorted(messages, key=lambda pair: pair[0])]
    return Replay(ordered, False, events[-1].seq if events else after)
