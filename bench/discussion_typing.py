"""Group case discussion typing: 15 participants writing one record together, live.

    .venv/bin/python bench/discussion_typing.py               # 15 participants, 20 s of typing
    .venv/bin/python bench/discussion_typing.py --duration 30 --servers 1
    .venv/bin/python bench/discussion_typing.py --help        # sizes, timings, addresses

A team manager and 14 colleagues from five agencies hold a group case discussion of
three of their team's cases. Each opens the discussion room (`ws/discussions/<id>/`) as
a browser does (Origin header, session cookie, `resume`, then `state` and `synced`) and
types into one section of the record: one word every 300-500 ms, each word saved at
once with `section.save` (the version and text the edit started from, and the new
text) unless a save is already in flight. Each participant keeps its section as the
room page does (workspace/static/js/discussion_room.mjs): one save in flight at a time;
version and base text from the `section.saved` replies and the `section` broadcasts;
a broadcast replaces the textarea only when nothing typed is unsaved, and one that
arrives while a save is in flight waits for its answer. Three kinds of section:

- six participants on one section, each writing on a line of their own: saves based
  on an old version are merged by the server (their changes touch different words);
- three participants adding to the end of the same line of another section: saves
  based on an old version clash, and the server keeps the text beside the section
  (a KeptText), whole;
- the other six alone on a section each: every save is a plain save.

It prints, for saves that changed a section (outcome saved or merged), the edit→others
latency: from just before a save is sent until each other participant receives the
`section` broadcast of the version it made (p50 / p99 / max, and how many broadcasts
were expected, received, missing and duplicated), by kind of section too; the
sender's own reply time; the time until others receive the `kept` notice of a kept
text; and the outcomes (saved / merged / kept / unchanged). Every word typed is unique
(e.g. `p07w12`: participant 7's word number 12); at the end the script reads the record
from the database and checks that every word is in its section's text or in one of its
kept texts ("lost edits", must be 0), that every participant's newest version of every
section is the database's and their textarea shows it with nothing unsaved
(converged), that no participant had an error frame or was rate-limited, and that once
all have closed no presence row, open attendance or group membership is left behind.
Exit status 0 when all that holds, 1 when it does not, 2 when it could not run.

Setup, all on loopback and all removed afterwards: a scratch PostgreSQL database
`bench_discussion` (never `test` or `test_test`, which the CI uses), migrated by
`manage.py migrate` in a subprocess; the agencies, team, 15 accounts and memberships,
cases, the discussion (`do_schedule_discussion`, `do_start_discussion`) and the
sections' starting lines (`do_save_section`) made through the real actions in this
process; sessions by signing in with `django.test.Client`. Two Daphne processes by
default (`--servers`; participants alternate between them, so most broadcasts cross
processes through Redis) on the Redis channel layer, database 7 by default (not 0: the
benchmark's notices never reach a development server's or a test run's sockets; its
discussion and user groups there are cleared before and after). The servers run with
the settings' live rate limit (LIVE_RATE_BURST, LIVE_RATE_PER_SECOND: a burst of 30 at
3 a second per connection) unless --rate-burst / --rate-per-second set it for them;
the typing stays under it. This process pauses its own garbage collector while the
typing is timed. Every wait is bounded and the whole run has a deadline (--budget).

See docs/performance.md for what it measured.
"""

import asyncio
import contextlib
import datetime
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from _common import (
    PASSWORD,
    ROOT,
    Daphne,
    Deadline,
    add_pg_admin_url,
    bench_env,
    clear_groups,
    describe_machine,
    drop_at_end,
    gc_paused,
    log,
    make_parser,
    manage,
    on_sigterm,
    open_scratch_postgres,
    parse_interval,
    percentile,
    print_problems,
    redis_answers,
    redis_db,
    require_loopback,
    setup_django,
    starting_load,
)

DB_NAME = "bench_discussion"
KINDS = ["worries", "working_well", "needs", "decision"]
#: A participant stops typing before its section would pass this (the limit is 4,000).
TEXT_ROOM = 3_800
#: Bounds on every wait (seconds).
CONNECT_WAIT = 20.0
QUIET_SECONDS, QUIET_WAIT = 1.0, 20.0
FLUSH_WAIT = 20.0
SETTLE_WAIT = 5.0
WORD = re.compile(r"\w+")
KEPT_ID = re.compile(r'data-kept-id="(\d+)"')

#: The team: the manager first, then 14 practitioners across five agencies.
#: (username, first, last, role, agency kind)
PEOPLE = [
    ("bench.manager", "Morgan", "Hale", "team_manager", "childrens_social_care"),
    ("bench.sw1", "Sam", "Okoro", "social_worker", "childrens_social_care"),
    ("bench.mh1", "Priya", "Lund", "mental_health_practitioner", "nhs_mental_health"),
    ("bench.dav1", "Grace", "Mensah", "da_victim_worker", "domestic_abuse"),
    ("bench.prob1", "Owen", "Reid", "probation_officer", "probation"),
    ("bench.rec1", "Nadia", "Farouk", "recovery_worker", "substance_misuse"),
    ("bench.sw2", "Tom", "Ashby", "social_worker", "childrens_social_care"),
    ("bench.fsw1", "Jess", "Cole", "family_support_worker", "childrens_social_care"),
    ("bench.dap1", "Kieran", "Walsh", "da_perpetrator_worker", "domestic_abuse"),
    ("bench.mh2", "Ruth", "Adeyemi", "mental_health_practitioner", "nhs_mental_health"),
    ("bench.sw3", "Ellie", "Marsh", "social_worker", "childrens_social_care"),
    ("bench.prob2", "Dev", "Patel", "probation_officer", "probation"),
    ("bench.dav2", "Holly", "Brennan", "da_victim_worker", "domestic_abuse"),
    ("bench.rec2", "Aaron", "Price", "recovery_worker", "substance_misuse"),
    ("bench.sw4", "Zara", "Khan", "social_worker", "childrens_social_care"),
]
AGENCIES = {
    "childrens_social_care": ("Bench Children's Services", "Children's services"),
    "nhs_mental_health": ("Bench NHS Trust", "NHS mental health"),
    "probation": ("Bench Probation Service", "Probation"),
    "domestic_abuse": ("Bench DA Service", "DA service"),
    "substance_misuse": ("Bench Recovery Service", "Substance misuse"),
}
FAMILIES = ["Ashworth", "Pemberton", "Kingsley", "Oakfield", "Thornbury", "Whitmore"]


# --- the channel layer's groups --------------------------------------------------------

GROUP_PATTERNS = ("asgi:group:discussion.*", "asgi:group:user.*")


def discussion_group_members(url: str, discussion_id: int) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3)
    keys = [f"asgi:group:discussion.{discussion_id}",
            *client.scan_iter(match=f"asgi:group:discussion.{discussion_id}.item.*", count=500)]
    return sum(client.zcard(key) for key in keys)


# --- the data, through the actions ------------------------------------------------------

@dataclass(frozen=True)
class Seat:
    """One participant: who, where they type, and how."""

    index: int
    user_id: int
    code: str  # P01 ...
    name: str
    agency: str
    cookie: str
    section: int  # the section they type into
    group: str  # "merge" (own line, shared section), "shared line" (the same line) or "solo"
    anchor: str | None  # their line's start, or None: the end of the text


def plan(participants: int, cases: int) -> list[tuple[tuple[int, str], str]]:
    """Where each participant types: ((case index, section kind), group)."""
    merge = max(2, round(participants * 0.4))
    shared = max(2, round(participants * 0.2))
    merge_slot, shared_slot = (0, "worries"), (0, "needs")
    solo_slots = [(c, k) for c in range(cases) for k in KINDS if (c, k) not in (merge_slot, shared_slot)]
    seats = []
    for i in range(participants):
        if i < merge:
            seats.append((merge_slot, "merge"))
        elif i < merge + shared:
            seats.append((shared_slot, "shared line"))
        else:
            seats.append((solo_slots[(i - merge - shared) % len(solo_slots)], "solo"))
    return seats


def person(i: int) -> tuple[str, str, str, str, str]:
    if i < len(PEOPLE):
        return PEOPLE[i]
    username, first, last, role, kind = PEOPLE[1 + (i - 1) % (len(PEOPLE) - 1)]
    return f"{username}.{i}", first, f"{last} {i}", role, kind


def build(participants: int, cases: int) -> dict:
    """Everything the run needs, written as the product writes it."""
    from django.test import Client
    from django.utils import timezone

    from casenotes.actions import do_create_case
    from casenotes.models import Case
    from discussions.actions import do_save_section, do_schedule_discussion, do_start_discussion
    from discussions.models import Section
    from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
    from teams.models import Agency, Membership, Team

    admin = do_create_user(acting_user=None, username="bench.admin", password=PASSWORD,
                           first_name="Bench", last_name="Administrator", is_superuser=True)
    agencies = {kind: do_save_agency(acting_user=admin, agency=Agency(name=name, short_name=short,
                                                                      kind=kind))
                for kind, (name, short) in AGENCIES.items()}
    team = do_save_team(acting_user=admin, team=Team(name="Bench Family Safeguarding Team",
                                                     kind=Team.Kind.FAMILY_SAFEGUARDING))
    start = timezone.localdate() - datetime.timedelta(days=200)
    users = []
    for i in range(participants):
        username, first, last, role, kind = person(i)
        user = do_create_user(acting_user=admin, username=username, password=PASSWORD,
                              first_name=first, last_name=last)
        do_save_membership(acting_user=admin, membership=Membership(
            user=user, team=team, agency=agencies[kind], role=role, start_date=start))
        users.append((user, agencies[kind].short_name))
    manager = users[0][0]
    case_rows = [
        do_create_case(acting_user=manager, reference=f"FS-26-{9001 + c}", family_name=FAMILIES[c % 6],
                       category=Case.Category.CHILD_PROTECTION_PLAN, team=team,
                       lead_practitioner=users[1][0],
                       opened_on=timezone.localdate() - datetime.timedelta(days=90 + 30 * c))
        for c in range(cases)
    ]
    discussion = do_schedule_discussion(
        acting_user=manager, team=team, scheduled_for=timezone.now() + datetime.timedelta(minutes=5),
        cases=case_rows, invitees=[u for u, _ in users[1:]], title="Bench group case discussion")
    discussion = do_start_discussion(acting_user=manager, discussion=discussion)
    sections = {(item.position - 1, s.kind): s
                for item in discussion.items.order_by("position") for s in item.sections.all()}

    layout = plan(participants, cases)
    codes = [f"P{i + 1:02d}" for i in range(participants)]
    # Each section's starting text: a line per participant writing on their own line; a
    # heading for the shared line. Saved by the manager, through the action.
    lines: dict[tuple[int, str], list[str]] = defaultdict(list)
    for i, (slot, group) in enumerate(layout):
        user, agency = users[i]
        if group == "shared line":
            lines[slot] = ["Shared notes:"]
        else:
            lines[slot].append(f"{codes[i]} {user.get_full_name()} ({agency}):")
    for slot, text_lines in lines.items():
        section = sections[slot]
        do_save_section(acting_user=manager, section=section, text="\n".join(text_lines),
                        version=section.version, base_text=section.text)

    seats = []
    for i, (slot, group) in enumerate(layout):
        user, agency = users[i]
        client = Client()
        if not client.login(username=user.username, password=PASSWORD):
            raise SystemExit(f"bench: could not sign in as {user.username}")
        seats.append(Seat(index=i, user_id=user.pk, code=codes[i], name=user.get_full_name(),
                          agency=agency, cookie=client.cookies["sessionid"].value,
                          section=sections[slot].pk, group=group,
                          anchor=None if group == "shared line" else f"{codes[i]} "))
    section_rows = Section.objects.filter(item__discussion=discussion).select_related("item")
    return {
        "discussion": discussion.pk, "seats": seats,
        "by_kind": {(s.item_id, s.kind): s.pk for s in section_rows},
        "names": {s.pk: f"{s.item.case.reference} '{s.kind}'" for s in section_rows},
        "agencies": len({a for _, a in users}),
    }


def with_words(text: str, anchor: str | None, words: list[str]) -> str:
    """`text` with `words` added at the end of the anchor's line (None: of the text)."""
    if not words:
        return text
    added = "".join(" " + w for w in words)
    if anchor is None:
        return text + added
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(anchor):
            lines[i] = line + added
            return "\n".join(lines)
    return f"{text}\n{anchor}{added}"  # their line has gone (nobody deletes one here)


# --- the participants -------------------------------------------------------------------

@dataclass
class Save:
    who: int
    section: int
    sent_at: float
    based_on: int
    replied_at: float | None = None
    outcome: str | None = None
    version: int | None = None
    kept: int | None = None


@dataclass
class Room:
    """What all participants share: the saves and when each frame arrived."""

    by_kind: dict[tuple[int, str], int]
    saves: list[Save] = field(default_factory=list)
    #: (section, version) -> {participant: perf_counter at receipt}
    section_receipts: dict[tuple[int, int], dict[int, float]] = field(
        default_factory=lambda: defaultdict(dict))
    #: (section, version) -> the `by` of its broadcast
    section_by: dict[tuple[int, int], int] = field(default_factory=dict)
    #: kept text id -> {participant: first receipt of a `kept` notice showing it}
    kept_receipts: dict[int, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    duplicates: int = 0
    last_frame: float = field(default_factory=time.monotonic)


class Editor:
    """The participant's own section as the room page keeps it
    (workspace/static/js/discussion_room.mjs, class Section): the textarea, the version
    and saved text (`base`) its edits start from, the text of the save in flight, and
    a newer version that arrived while that save was in flight."""

    def __init__(self, version: int, text: str):
        self.version, self.base, self.textarea = version, text, text
        self.sent: str | None = None
        self.waiting: tuple[int, str] | None = None

    @property
    def dirty(self) -> bool:
        return self.textarea != self.base

    def saved(self, version: int, text: str) -> None:
        """The answer to this page's own save."""
        sent, self.sent = self.sent, None
        if sent is None:
            return
        self.version = version
        if self.textarea == sent:
            # Nothing typed meanwhile: the section as saved (merged with others' words).
            self.textarea = self.base = text
        else:
            self.base = sent  # typed on while saving: the next save starts from what was sent
        waiting, self.waiting = self.waiting, None
        if waiting:
            self.remote(*waiting)

    def refused(self) -> None:
        self.sent = self.waiting = None

    def remote(self, version: int, text: str) -> None:
        """Someone (or this page's own save, broadcast) saved a new version."""
        if version <= self.version:
            return
        if self.sent is not None:
            if not self.waiting or version > self.waiting[0]:
                self.waiting = (version, text)
            return
        self.version = version
        if not self.dirty:
            self.textarea = self.base = text
        # else: unsaved typing stays; it is merged with this version when saved


class Participant:
    def __init__(self, seat: Seat, port: int, room: Room, args, rng: random.Random):
        self.seat, self.port, self.room, self.args, self.rng = seat, port, room, args, rng
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.synced = asyncio.Event()
        #: the newest version and text of every section seen (state, broadcasts, replies)
        self.known: dict[int, tuple[int, str]] = {}
        self.editor: Editor | None = None
        self.inflight: Save | None = None
        self.typed: list[str] = []
        self.failures: list[str] = []
        self.rate_limited = 0
        self.full = False
        self.closed_early = False
        self.closing = False
        self.frames = 0
        self.last_sent = -math.inf

    async def open(self) -> None:
        import websockets

        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/ws/discussions/{self.args.discussion}/",
            origin=websockets.Origin(f"http://127.0.0.1:{self.port}"),
            additional_headers={"Cookie": f"sessionid={self.seat.cookie}"},
            open_timeout=CONNECT_WAIT, close_timeout=2, max_size=2**22,
        )
        self.reader = asyncio.ensure_future(self._read())
        await self.ws.send(json.dumps({"type": "resume", "after": 0}))
        await asyncio.wait_for(self.synced.wait(), timeout=CONNECT_WAIT)
        if self.seat.section not in self.known:
            raise SystemExit(f"bench: {self.seat.code}'s state lacks section {self.seat.section}")
        self.editor = Editor(*self.known[self.seat.section])

    async def _read(self) -> None:
        import websockets

        try:
            async for raw in self.ws:
                now = time.perf_counter()
                self.frames += 1
                self.room.last_frame = time.monotonic()
                self._handle(json.loads(raw), now)
        except websockets.ConnectionClosed as closed:
            if not self.closing:
                self.closed_early = True
                self.failures.append(f"connection closed by the server ({closed})")
        except Exception as error:  # a bug here must not pass as a quiet participant
            self.failures.append(f"reader failed: {error!r}")

    def _learn(self, section: int, version: int, text: str) -> None:
        if version > self.known.get(section, (0, ""))[0]:
            self.known[section] = (version, text)
        if section == self.seat.section and self.editor is not None:
            self.editor.remote(version, text)

    def _handle(self, frame: dict, now: float) -> None:
        kind = frame.get("type")
        room = self.room
        if kind == "section":
            section = room.by_kind.get((frame["item"], frame["section"]))
            if section is None:
                self.failures.append(f"broadcast for an unknown section: {frame['item']} {frame['section']}")
                return
            key = (section, frame["version"])
            got = room.section_receipts[key]
            if self.seat.index in got:
                room.duplicates += 1
            else:
                got[self.seat.index] = now
            room.section_by[key] = frame.get("by")
            self._learn(section, frame["version"], frame["text"])
        elif kind == "section.saved":
            save = self.inflight
            if save is None or save.section != frame["section"]:
                self.failures.append(f"a reply with no save of that section in flight: {frame}")
                return
            save.replied_at, save.outcome = now, frame["outcome"]
            save.version, save.kept = frame["version"], frame.get("kept")
            self.inflight = None
            if frame["version"] > self.known.get(frame["section"], (0, ""))[0]:
                self.known[frame["section"]] = (frame["version"], frame["text"])
            self.editor.saved(frame["version"], frame["text"])
        elif kind == "kept":
            for kept_id in KEPT_ID.findall(frame.get("html", "")):
                room.kept_receipts[int(kept_id)].setdefault(self.seat.index, now)
        elif kind == "state":
            for item, content in frame["items"].items():
                for section_kind, section in content["sections"].items():
                    pk = room.by_kind.get((int(item), section_kind))
                    if pk is not None:
                        self._learn(pk, section["version"], section["text"])
            if frame.get("status") != "in_progress":
                self.failures.append(f"the discussion is {frame.get('status')}, not in progress")
        elif kind == "synced":
            self.synced.set()
        elif kind in ("error", "section.invalid"):
            if frame.get("code") == "rate_limited":
                self.rate_limited += 1
            self.failures.append(f"{kind}: {frame.get('code', '')} {frame.get('message', '')}".strip())
            if self.inflight is not None:  # only saves are sent after `resume`: this answers it
                self.inflight.outcome, self.inflight.replied_at = "refused", now
                self.inflight = None
                # The page clears its save in flight only for a refusal that names the
                # section (section.invalid, not_found); here any refusal does, so that the
                # text is sent again (the refusal still fails the run).
                self.editor.refused()
        elif kind == "status" and frame.get("status") != "in_progress":
            self.failures.append(f"the discussion became {frame.get('status')}")
        elif kind == "hidden":
            self.failures.append(f"item {frame.get('item')} hidden from this participant")
        # presence, editing, actions, agenda: not measured

    async def _save(self) -> None:
        """As the page's save(): only when nothing is in flight and the text differs
        from what it was based on."""
        editor = self.editor
        if editor.sent is not None or not editor.dirty:
            return
        save = Save(who=self.seat.index, section=self.seat.section, sent_at=0.0,
                    based_on=editor.version)
        self.inflight = save
        self.room.saves.append(save)
        editor.sent = editor.textarea
        message = json.dumps({"type": "section.save", "section": self.seat.section,
                              "version": editor.version, "base": editor.base, "text": editor.textarea})
        save.sent_at = self.last_sent = time.perf_counter()
        await self.ws.send(message)

    async def type_until(self, stop_at: float) -> None:
        """A word at the end of their line (or of the shared line) every --interval ms,
        saved at once unless a save is in flight or the last was sent less than
        --save-gap ago (then it goes with a later one)."""
        low, high = self.args.interval
        gap = self.args.save_gap / 1000
        editor = self.editor
        await asyncio.sleep(self.rng.uniform(0, high))
        number = 0
        while time.perf_counter() < stop_at and not self.closed_early:
            word = f"{self.seat.code.lower()}w{number}"
            typed = with_words(editor.textarea, self.seat.anchor, [word])
            if len(typed) > TEXT_ROOM:
                self.full = True
                break
            number += 1
            editor.textarea = typed
            self.typed.append(word)
            if time.perf_counter() - self.last_sent >= gap:
                await self._save()
            await asyncio.sleep(self.rng.uniform(low, high))

    async def flush(self, until: float) -> None:
        """Save what is typed and not yet saved, as the page does before leaving."""
        editor = self.editor
        while (editor.dirty or editor.sent is not None) and time.monotonic() < until \
                and not self.closed_early:
            await self._save()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), timeout=5)
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


async def quiet(room: Room) -> None:
    """Wait (bounded) until the presence broadcasts of the joins have drained."""
    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        if time.monotonic() - room.last_frame >= QUIET_SECONDS:
            return
        await asyncio.sleep(0.1)
    log(f"warning: frames still arriving after {QUIET_WAIT:.0f} s; typing anyway")


def expected_receipts(room: Room, participants: int) -> list[tuple[Save, int]]:
    """(save, other participant) for every save that made a version."""
    return [(save, other) for save in room.saves if save.outcome in ("saved", "merged")
            for other in range(participants) if other != save.who]


async def settle(room: Room, participants: int) -> None:
    deadline = time.monotonic() + SETTLE_WAIT
    while time.monotonic() < deadline:
        if all(other in room.section_receipts.get((save.section, save.version), {})
               for save, other in expected_receipts(room, participants)):
            return
        await asyncio.sleep(0.1)


async def run_room(args, world: dict, ports: list[int], deadline: Deadline) -> dict:
    room = Room(by_kind=world["by_kind"])
    rng = random.Random(args.seed)
    people = [Participant(seat, ports[seat.index % len(ports)], room, args,
                          random.Random(rng.random())) for seat in world["seats"]]
    try:
        log(f"{len(people)} participants: connecting")
        limit = asyncio.Semaphore(8)

        async def open_one(p):
            async with limit:
                await p.open()

        await asyncio.wait_for(asyncio.gather(*(open_one(p) for p in people)),
                               timeout=CONNECT_WAIT + len(people))
        await quiet(room)
        deadline.check("before typing")
        log(f"typing for {args.duration:g} s")
        with gc_paused():
            started = time.perf_counter()
            stop_at = started + args.duration
            await asyncio.gather(*(p.type_until(stop_at) for p in people))
            typed_for = time.perf_counter() - started
            until = time.monotonic() + FLUSH_WAIT
            await asyncio.gather(*(p.flush(until) for p in people))
            await settle(room, len(people))
        log(f"typed for {typed_for:.1f} s; {len(room.saves)} saves")
        return {"room": room, "people": people, "typed_for": typed_for}
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)


# --- after the run ------------------------------------------------------------------------

def read_record(section_ids: set[int]) -> dict:
    from discussions.models import KeptText, Section

    sections = {s.pk: (s.version, s.text) for s in Section.objects.filter(pk__in=section_ids)}
    kept: dict[int, list[str]] = defaultdict(list)
    for row in KeptText.objects.filter(section_id__in=section_ids).order_by("pk"):
        kept[row.section_id].append(row.text)
    return {"sections": sections, "kept": kept}


def left_behind(discussion_id: int, redis_url: str) -> dict:
    """Once every participant has closed: presence rows, open attendance stretches and
    group memberships left after (bounded) time for the server's disconnects."""
    from discussions.models import Attendance, DiscussionPresence

    result = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = {
            "presence rows": DiscussionPresence.objects.filter(discussion_id=discussion_id).count(),
            "open attendance": Attendance.objects.filter(discussion_id=discussion_id,
                                                         left_at__isnull=True).count(),
            "group memberships": discussion_group_members(redis_url, discussion_id),
        }
        if not any(result.values()):
            break
        time.sleep(0.5)
    return result


def ms(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.1f} / p99 {percentile(values, 99):.1f} / "
            f"max {max(values) if values else math.nan:.1f} ms")


def analyse(result: dict, world: dict, record: dict) -> dict:
    room, people = result["room"], result["people"]
    seats = world["seats"]
    n = len(people)
    outcomes = Counter(save.outcome or "no reply" for save in room.saves)
    latencies: list[float] = []
    by_group: dict[str, list[float]] = defaultdict(list)
    # Whether the receiver had a save of its own under way when this one was answered
    # (its commit, and so its broadcast, came just before): Channels handles one message
    # of a connection at a time, so the broadcast waits behind that save.
    own_saves: dict[int, list[Save]] = defaultdict(list)
    for save in room.saves:
        if save.replied_at is not None:
            own_saves[save.who].append(save)
    busy_or_idle: dict[str, list[float]] = defaultdict(list)
    missing = 0
    wrong_by = 0
    for save, other in expected_receipts(room, n):
        key = (save.section, save.version)
        got = room.section_receipts.get(key, {}).get(other)
        if got is None:
            missing += 1
            continue
        latency = (got - save.sent_at) * 1000
        latencies.append(latency)
        by_group[seats[save.who].group].append(latency)
        busy = any(mine.sent_at < save.replied_at < mine.replied_at for mine in own_saves[other])
        busy_or_idle["busy" if busy else "idle"].append(latency)
    for save in room.saves:
        key = (save.section, save.version)
        if save.outcome in ("saved", "merged") and key in room.section_by \
                and room.section_by[key] != seats[save.who].user_id:
            wrong_by += 1
    replies = [(s.replied_at - s.sent_at) * 1000 for s in room.saves if s.replied_at is not None]
    answered = [s.replied_at for s in room.saves if s.replied_at is not None]
    span = (max(answered) - min(s.sent_at for s in room.saves)) if answered else math.nan
    reply_by_outcome: dict[str, list[float]] = defaultdict(list)
    for s in room.saves:
        if s.replied_at is not None:
            reply_by_outcome[s.outcome].append((s.replied_at - s.sent_at) * 1000)
    # A kept save right after a kept save of the same participant: the page starts its
    # next save from the text that was kept when the participant typed on meanwhile.
    kept_after_kept = 0
    for saves in own_saves.values():
        kept_after_kept += sum(1 for before, after in zip(saves, saves[1:], strict=False)
                               if before.outcome == after.outcome == "kept")
    kept_latencies, kept_missing = [], 0
    for save in room.saves:
        if save.outcome == "kept" and save.kept is not None:
            got = room.kept_receipts.get(save.kept, {})
            for other in range(n):
                if other == save.who:
                    continue
                if other in got:
                    kept_latencies.append((got[other] - save.sent_at) * 1000)
                else:
                    kept_missing += 1

    # No lost edit: every word typed is in its section's text or one of its kept texts.
    lost: list[str] = []
    in_section = in_kept = 0
    for p in people:
        section = p.seat.section
        version, text = record["sections"][section]
        section_words = set(WORD.findall(text))
        kept_words = set(WORD.findall("\n".join(record["kept"].get(section, []))))
        for word in p.typed:
            if word in section_words:
                in_section += 1
            elif word in kept_words:
                in_kept += 1
            else:
                lost.append(word)
    # Converged: the newest version of every section this participant has seen is the
    # database's, and their own section's textarea shows it, with nothing unsaved.
    converged = sum(1 for p in people
                    if all(p.known.get(pk) == state for pk, state in record["sections"].items())
                    and p.editor is not None and not p.editor.dirty and p.editor.sent is None
                    and p.editor.textarea == record["sections"][p.seat.section][1])
    return {
        "outcomes": outcomes, "latencies": latencies, "by_group": by_group, "missing": missing,
        "busy_or_idle": busy_or_idle, "kept_after_kept": kept_after_kept,
        "expected": len(expected_receipts(room, n)), "wrong_by": wrong_by, "replies": replies,
        "reply_by_outcome": reply_by_outcome, "kept_latencies": kept_latencies,
        "kept_missing": kept_missing, "lost": lost, "in_section": in_section, "in_kept": in_kept,
        "typed": sum(len(p.typed) for p in people), "converged": converged,
        "failures": {p.seat.code: p.failures for p in people if p.failures},
        "rate_limited": sum(p.rate_limited for p in people),
        "full": [p.seat.code for p in people if p.full],
        "kept_texts": sum(len(v) for v in record["kept"].values()),
        "frames": sum(p.frames for p in people), "duplicates": room.duplicates, "span": span,
    }


def report(header: list[str], plan_lines: list[str], a: dict, left: dict, typed_for: float,
           n: int, problems: list[str]) -> bool:
    print()
    for line in header:
        print(line)
    for line in plan_lines:
        print("  " + line)
    print()
    o = a["outcomes"]
    saves, span = sum(o.values()), a["span"]
    print(f"saves: {saves}, sent and answered over {span:.1f} s ({saves / span:.1f}/s in all, "
          f"{saves / span / n:.2f}/s a participant); words typed: {a['typed']} in {typed_for:.1f} s")
    print("outcomes: " + ", ".join(f"{name} {o.get(name, 0)}" for name in
                                   ("saved", "merged", "kept", "unchanged", "refused", "no reply")))
    if o.get("kept"):
        print(f"  kept saves that followed a kept save of the same participant: "
              f"{a['kept_after_kept']} of {o['kept']}")
    received = len(a["latencies"])
    print(f"edit→others latency (saved and merged saves, each to the {n - 1} others): "
          f"{ms(a['latencies'])}")
    print(f"  broadcasts: {a['expected']} expected, {received} received, {a['missing']} missing, "
          f"{a['duplicates']} duplicates, {a['wrong_by']} naming the wrong author")
    for group, label in (("merge", "own lines in a shared section"), ("shared line", "the shared line"),
                         ("solo", "a section of one's own")):
        if a["by_group"].get(group):
            print(f"  saves typed on {label}: {ms(a['by_group'][group])} ({len(a['by_group'][group])})")
    for state, label in (("idle", "to a receiver with no save of its own under way"),
                         ("busy", "to a receiver whose own save was under way")):
        values = a["busy_or_idle"].get(state, [])
        print(f"  {label}: {ms(values)} ({len(values)})")
    print(f"save → own reply: {ms(a['replies'])}")
    for outcome, values in sorted(a["reply_by_outcome"].items()):
        print(f"  {outcome}: {ms(values)} ({len(values)})")
    if a["kept_latencies"] or a["kept_missing"]:
        print(f"kept text → others' kept notice: {ms(a['kept_latencies'])} "
              f"({len(a['kept_latencies'])} received, {a['kept_missing']} missing)")
    print(f"frames received by all participants: {a['frames']}")
    print()
    checks = []
    lost = a["lost"]
    checks.append(not lost)
    print(f"lost edits: {len(lost)} ({a['in_section']} words in their section, {a['in_kept']} in "
          f"{a['kept_texts']} kept texts) ({'PASS' if not lost else 'FAIL'}: must be 0)")
    if lost:
        print("  lost: " + ", ".join(lost[:40]) + (" ..." if len(lost) > 40 else ""))
    checks.append(a["missing"] == 0 and a["kept_missing"] == 0 and a["wrong_by"] == 0)
    print(f"missing broadcasts: {a['missing']} section, {a['kept_missing']} kept "
          f"({'PASS' if checks[-1] else 'FAIL'}: must be 0)")
    checks.append(a["converged"] == n)
    print(f"participants whose page shows the database's record, nothing unsaved: {a['converged']}/{n} "
          f"({'PASS' if checks[-1] else 'FAIL'})")
    failed = a["failures"]
    checks.append(not failed)
    print(f"participants with an error, refusal or dropped connection: {len(failed)} "
          f"(rate-limited messages: {a['rate_limited']}) ({'PASS' if not failed else 'FAIL'}: must be 0)")
    for code, failures in failed.items():
        for line, count in Counter(failures).most_common(5):
            print(f"  {code}: {count} x {line[:200]}")
    checks.append(not any(left.values()))
    print("left behind after every participant closed: "
          + ", ".join(f"{count} {what}" for what, count in left.items())
          + f" ({'PASS' if checks[-1] else 'FAIL'}: must be 0)")
    if a["full"]:
        print(f"note: {', '.join(a['full'])} stopped typing early: their section was near "
              f"{TEXT_ROOM:,} characters")
    passed = all(checks)
    print(f"overall: {'PASS' if passed else 'FAIL'}")
    print_problems("server logs (var/bench-discussion-daphne-*.log) report:", problems)
    return passed


def _interval(text: str) -> tuple[float, float]:
    return parse_interval(text, 50, 10_000)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--participants", type=int, default=15, help="people in the room (15)")
    parser.add_argument("--cases", type=int, default=3, help="cases on the agenda (3)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of typing (20)")
    parser.add_argument("--interval", type=_interval, default="300-500",
                        help="milliseconds between one participant's words, MIN-MAX (300-500)")
    parser.add_argument("--save-gap", type=float, default=0,
                        help="milliseconds a participant waits after sending a save before the "
                             "next (0: saves every word unless one is in flight)")
    parser.add_argument("--servers", type=int, default=2, help="Daphne processes (2)")
    parser.add_argument("--rate-burst", type=int, help="LIVE_RATE_BURST for the servers "
                        "(default: the settings', 30)")
    parser.add_argument("--rate-per-second", type=float, help="LIVE_RATE_PER_SECOND for the servers "
                        "(default: the settings', 3)")
    add_pg_admin_url(parser)
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_DISCUSSION_REDIS_URL", "redis://127.0.0.1:6379/7"),
        help="the Redis channel layer (BENCH_DISCUSSION_REDIS_URL; default database 7, never 0)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed for the typing (2026)")
    parser.add_argument("--budget", type=float, default=150, help="seconds the whole run may take (150)")
    args = parser.parse_args()
    if not 5 <= args.participants <= 40:
        parser.error("--participants: 5..40")
    if not 1 <= args.cases <= 6:
        parser.error("--cases: 1..6")
    if not 1 <= args.duration <= 120:
        parser.error("--duration: 1..120 seconds")
    if not 1 <= args.servers <= 8:
        parser.error("--servers: 1..8")
    if not 0 <= args.save_gap <= 10_000:
        parser.error("--save-gap: 0..10000 ms")
    merge_size = max(2, round(args.participants * 0.4))
    words_each = args.duration / (sum(args.interval) / 2)
    if merge_size * (words_each * len(f" p00w{words_each:.0f}") + 40) > TEXT_ROOM:
        parser.error(f"{merge_size} people typing {words_each:.0f} words each would not fit in one "
                     f"section ({TEXT_ROOM:,} characters): shorten --duration or slow --interval")
    require_loopback(args.redis_url, "Redis")
    if redis_db(args.redis_url) == 0:
        parser.error("--redis-url: use a Redis database of the benchmark's own (not 0), e.g. /7")
    deadline = Deadline(args.budget, "shorten --duration")
    load_before = starting_load()
    on_sigterm()
    if not redis_answers(args.redis_url):
        return 2
    database = open_scratch_postgres(args.pg_admin_url, DB_NAME, avoid_ci=True, needed="; it is needed")
    if database is None:
        return 2

    env = bench_env(database.url, redis_url=args.redis_url,
                    unset=("LIVE_RATE_BURST", "LIVE_RATE_PER_SECOND"))
    if args.rate_burst is not None:
        env["LIVE_RATE_BURST"] = str(args.rate_burst)
    if args.rate_per_second is not None:
        env["LIVE_RATE_PER_SECOND"] = str(args.rate_per_second)
    (ROOT / "var").mkdir(exist_ok=True)
    servers: list[Daphne] = []
    django_ready = False
    try:
        log(f"database: {database.describe()}")
        database.create()
        log("migrating")
        manage(env, "migrate", "--noinput")
        deadline.check("migrating")
        # The rate limit too, so that this process reads what the servers use.
        setup_django(env, also=("LIVE_RATE_BURST", "LIVE_RATE_PER_SECOND"))
        django_ready = True
        stale = clear_groups(args.redis_url, GROUP_PATTERNS)
        if stale:
            log(f"removed {stale} group memberships left in {args.redis_url} by an earlier run")
        log(f"the team, {args.participants} accounts, {args.cases} cases and the discussion, "
            "through the actions")
        world = build(args.participants, args.cases)
        args.discussion = world["discussion"]
        for i in range(args.servers):
            servers.append(Daphne(env, ROOT / "var" / f"bench-discussion-daphne-{i + 1}.log"))
        for server in servers:
            server.wait_ready()
        log(f"{len(servers)} Daphne on 127.0.0.1:" + ", ".join(str(s.port) for s in servers)
            + " (logs var/bench-discussion-daphne-*.log)")

        async def go():
            return await asyncio.wait_for(
                run_room(args, world, [s.port for s in servers], deadline),
                timeout=max(deadline.left(), 1))

        try:
            result = asyncio.run(go())
        except TimeoutError:
            print("bench: a participant did not connect, sync or finish in time (see the "
                  "servers' logs in var/)", file=sys.stderr)
            return 1
        section_ids = set(world["by_kind"].values())
        record = read_record(section_ids)
        left = left_behind(world["discussion"], args.redis_url)
        problems = [f"server {i + 1}: {line}" for i, s in enumerate(servers)
                    for line in s.problems(warnings=True)]
        analysis = analyse(result, world, record)

        from django.conf import settings

        layer = settings.CHANNEL_LAYERS["default"]
        burst, per_second = settings.LIVE_RATE_BURST, settings.LIVE_RATE_PER_SECOND
        low, high = args.interval
        rate_source = ("set for the servers by --rate-burst/--rate-per-second"
                       if args.rate_burst is not None or args.rate_per_second is not None
                       else "the settings' defaults, unchanged")
        header = [
            "Group case discussion typing benchmark, "
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            describe_machine(load_before),
            f"database: {database.describe()}",
            f"channel layer: {layer['BACKEND'].rsplit('.', 1)[-1]} at {args.redis_url}, capacity "
            f"{layer['CONFIG'].get('capacity')}; {len(servers)} Daphne process(es), participants "
            "alternating between them",
            f"rate limit per connection: burst {burst}, {per_second:g} messages/s "
            f"(LIVE_RATE_BURST / LIVE_RATE_PER_SECOND, {rate_source}); typing: one word every "
            f"{low * 1000:.0f}-{high * 1000:.0f} ms (mean {2 / (low + high):.2f}/s), at most one save "
            "in flight per participant"
            + (f", saves at least {args.save_gap:g} ms apart" if args.save_gap else ", each word saved"),
            f"discussion: {args.cases} case{'s' if args.cases > 1 else ''} on the agenda, "
            f"{args.participants} participants (the "
            f"manager and {args.participants - 1} practitioners of {world['agencies']} agencies), "
            f"{args.duration:g} s of typing; where they type:",
        ]
        plan_lines = []
        groups: dict[tuple[int, str], list[str]] = defaultdict(list)
        for seat in world["seats"]:
            groups[(seat.section, seat.group)].append(seat.code)
        for (section, group), codes in groups.items():
            how = {"merge": "each on their own line", "shared line": "all adding to the same line",
                   "solo": "alone" if len(codes) == 1 else "each on their own line"}[group]
            plan_lines.append(f"{world['names'][section]}: {', '.join(codes)} ({how})")
        passed = report(header, plan_lines, analysis, left, result["typed_for"], args.participants,
                        problems)
        return 0 if passed else 1
    finally:
        for server in servers:
            server.stop()
        try:
            clear_groups(args.redis_url, GROUP_PATTERNS)
        except Exception as error:
            log(f"could not clear the groups in Redis: {error}")
        if django_ready:
            from django.db import connections

            connections.close_all()
        drop_at_end(database, f"removed the scratch database {DB_NAME}")


if __name__ == "__main__":
    sys.exit(main())
