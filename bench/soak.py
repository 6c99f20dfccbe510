"""Soak test: 50 practitioners in five case rooms for 5 minutes, Redis restarted once.

    .venv/bin/python bench/soak.py                   # 50 practitioners, 300 s, Redis down 5 s half-way
    .venv/bin/python bench/soak.py --duration 60     # a shorter run
    .venv/bin/python bench/soak.py --help            # sizes, timings, addresses

Five Family Safeguarding teams each hold one case; each team's ten members (a manager,
social workers and practitioners of four other agencies) keep that case's page open
for the whole run, as a browser does: they load the case page (its `data-seq`), open
`ws/cases/<id>/` with an Origin header and their session cookie, send `resume` with
the highest event number seen, and on any close reconnect with the page's backoff
(workspace/static/js/case_room.mjs: 1 s doubling to 15 s, jittered; a sync timeout of
15 s; an application `ping` every 25 s, the connection closed if nothing answers it
within 20 s) and resume from the highest number seen while synced. Every 4-12 s
(`--interval`, randomised) each saves a finalised standard note through the note form,
as the page does: an HTTP POST to `cases/<id>/notes/new/` on its own server, with the
session cookie and the CSRF token of the form it loaded. Standard notes go to everyone
in the room, so each note is due to the ten members of its case, its author included.

Half-way through, the script stops its own Redis (the channel layer), waits
`--outage` seconds and starts it again on the same port, empty (no persistence: every
group membership and queued message is gone). The practitioners carry on saving
throughout: the database is the record, so a save while Redis is down must still
succeed, and reach everyone once Redis is back, through the reconnect and `resume`.

It prints notes saved (and how the saves were answered), deliveries expected (every
finalised standard note in the database, to every member of its case) and received,
lost (must be 0), duplicates, save→delivery latency (p50/p99/max) for live deliveries
and separately for those caught up by `resume` after a reconnect, the saves made while
Redis was down and how long their notes took to arrive, reconnects and how long after
Redis returned everyone was synced again, the page's save time, each server's memory
(VmRSS) at the start and end of the soak, the deadlocks PostgreSQL detected, what was left
behind once all had closed (presence rows, room-group memberships), and what the
servers' logs report. Exit status 0 when nothing was lost and no participant
failed (every save answered by the redirect of a saved note, no error frame, refusal or
reload, every page synced and at its case's last event number at the end, and at least
one note saved while Redis was down, then delivered to all), 1 otherwise, 2 when it could not run.

Setup, all on loopback and all removed afterwards: its own `redis-server` on a free
port (no persistence; never the machine's shared Redis); a scratch PostgreSQL database
`bench_soak` (never `test` or `test_test`), migrated by `manage.py migrate` in a
subprocess; agencies, teams, accounts, memberships and cases made through the real
actions in this process; sessions by signing in with `django.test.Client`. Two Daphne
processes (`--servers`; practitioners alternate between them, so each room spans both
and every delivery crosses processes through Redis), with the settings' live rate limit
and channel-layer capacity, unchanged. Every wait is bounded and the whole run has a
hard deadline (`--budget`).

See docs/performance.md for what it measured.
"""

import asyncio
import contextlib
import datetime
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from _common import (
    PASSWORD,
    ROOT,
    BenchError,
    Daphne,
    Deadline,
    add_pg_admin_url,
    alarm_after,
    bench_env,
    describe_machine,
    drop_at_end,
    end_process,
    free_port,
    log,
    make_parser,
    manage,
    on_sigterm,
    open_scratch_postgres,
    parse_interval,
    percentile,
    print_problems,
    setup_django,
    starting_load,
)

DB_NAME = "bench_soak"
#: The page's reconnection behaviour (workspace/static/js/case_room.mjs).
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 15.0
SYNC_TIMEOUT = 15.0
PING_EVERY, PONG_WAIT = 25.0, 20.0
#: Bounds on every wait (seconds).
CONNECT_WAIT = 15.0
HTTP_TIMEOUT = 30.0
SETTLE_WAIT = 60.0
SAMPLE_EVERY = 15.0
STAMP = re.compile(r"\[soak:(\w+):(P\d+):(\d+)\]")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PAGE_SEQ = re.compile(r'id="notes"[^>]*\bdata-seq="(\d+)"')
NOTE_LOCATION = re.compile(r"/cases/(\d+)/notes/(\d+)/$")

#: One team: (role, agency kind, first name, last name). Ten people across five agencies.
TEAM = [
    ("team_manager", "childrens_social_care", "Morgan", "Hale"),
    ("social_worker", "childrens_social_care", "Sam", "Okoro"),
    ("social_worker", "childrens_social_care", "Tom", "Ashby"),
    ("family_support_worker", "childrens_social_care", "Jess", "Cole"),
    ("mental_health_practitioner", "nhs_mental_health", "Priya", "Lund"),
    ("da_victim_worker", "domestic_abuse", "Grace", "Mensah"),
    ("da_perpetrator_worker", "domestic_abuse", "Kieran", "Walsh"),
    ("probation_officer", "probation", "Owen", "Reid"),
    ("recovery_worker", "substance_misuse", "Nadia", "Farouk"),
    ("social_worker", "childrens_social_care", "Zara", "Khan"),
]
AGENCIES = {
    "childrens_social_care": ("Soak Children's Services", "Children's services"),
    "nhs_mental_health": ("Soak NHS Trust", "NHS mental health"),
    "probation": ("Soak Probation Service", "Probation"),
    "domestic_abuse": ("Soak DA Service", "DA service"),
    "substance_misuse": ("Soak Recovery Service", "Substance misuse"),
}
FAMILIES = ["Ashworth", "Pemberton", "Kingsley", "Oakfield", "Thornbury", "Whitmore", "Ellison",
            "Harrow"]
NOTE_TYPES = ["phone_call", "home_visit", "office_visit", "direct_work", "multi_agency_meeting"]
SENTENCES = [
    "Spoke with mum about the school run and the plan for the weekend.",
    "Dad attended the appointment and engaged well with the worker.",
    "The children were seen together; both said home has been calmer this week.",
    "Agreed to share the outcome of the review with the team manager by Friday.",
    "No new concerns raised; the safety plan was gone through again with both parents.",
    "Housing officer confirmed the repairs are booked for next Tuesday.",
]


def ms(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.0f} / p99 {percentile(values, 99):.0f} / "
            f"max {max(values) if values else math.nan:.0f} ms ({len(values)})")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB; nan if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


# --- the script's own Redis -------------------------------------------------------------

class RedisServer:
    """A redis-server of this script's own on a free loopback port, without persistence,
    so stopping it disturbs nothing else on the machine."""

    def __init__(self, log_path: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise BenchError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        import redis

        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"redis-server exited: {self.log_path.read_text()[-1000:]}")
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise BenchError("redis-server did not answer within 15 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM: it closes every client connection)."""
        if self.process is not None:
            end_process(self.process)
        self.process = None

    def close(self) -> None:
        self.stop()
        self.log.close()

    def case_group_members(self) -> int:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=3)
        return sum(client.zcard(key) for key in client.scan_iter(match="asgi:group:case.*", count=500))


# --- the servers ------------------------------------------------------------------------

class Server(Daphne):
    """A Daphne process, with its memory, whether it is running, and its JSON log read."""

    def rss(self) -> float:
        return rss_mb(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def count(self, text: str) -> int:
        """Lines of the log containing `text`."""
        return sum(1 for line in self.log_lines() if text in line)

    def problems(self) -> list[str]:
        """What went wrong in the server, by the log: each kind of line with its count
        (JSON log lines by their level and message)."""
        found: Counter = Counter()
        for line in self.log_lines():
            line = line.strip()
            if not re.search(r"over capacity|ERROR|Exception|Error:|WARNING|Traceback", line):
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    line = f"{entry.get('level', '')} {entry.get('logger', '')}: {entry.get('message', '')}"
            found[line[:170]] += 1
        return [f"{count} x {line}" for line, count in found.most_common(12)]


# --- the data, through the actions ------------------------------------------------------

@dataclass(frozen=True)
class Seat:
    index: int
    code: str  # P01 ...
    username: str
    user_id: int
    case_id: int
    reference: str
    cookie: str


def build(cases: int, per_case: int) -> dict:
    """Agencies, one team per case with its members, the cases: written as the product
    writes them; then every member signed in."""
    from django.test import Client
    from django.utils import timezone

    from casenotes.actions import do_create_case
    from casenotes.models import Case
    from teams.actions import do_create_user, do_save_agency, do_save_membership, do_save_team
    from teams.models import Agency, Membership, Team

    admin = do_create_user(acting_user=None, username="soak.admin", password=PASSWORD,
                           first_name="Soak", last_name="Administrator", is_superuser=True)
    agencies = {kind: do_save_agency(acting_user=admin, agency=Agency(name=name, short_name=short,
                                                                      kind=kind))
                for kind, (name, short) in AGENCIES.items()}
    start = timezone.localdate() - datetime.timedelta(days=200)
    seats: list[Seat] = []
    for c in range(cases):
        team = do_save_team(acting_user=admin, team=Team(name=f"Soak Family Safeguarding Team {c + 1}",
                                                         kind=Team.Kind.FAMILY_SAFEGUARDING))
        members = []
        for m in range(per_case):
            role, kind, first, last = TEAM[m % len(TEAM)]
            username = f"soak.t{c + 1}.{m + 1:02d}"
            user = do_create_user(acting_user=admin, username=username, password=PASSWORD,
                                  first_name=first, last_name=f"{last} {c + 1}")
            do_save_membership(acting_user=admin, membership=Membership(
                user=user, team=team, agency=agencies[kind], role=role, start_date=start))
            members.append(user)
        case = do_create_case(acting_user=members[0], reference=f"FS-26-{9501 + c}",
                              family_name=FAMILIES[c % len(FAMILIES)],
                              category=Case.Category.CHILD_PROTECTION_PLAN, team=team,
                              lead_practitioner=members[1 % len(members)],
                              opened_on=timezone.localdate() - datetime.timedelta(days=60 + 20 * c))
        for user in members:
            client = Client()
            if not client.login(username=user.username, password=PASSWORD):
                raise BenchError(f"could not sign in as {user.username}")
            index = len(seats)
            seats.append(Seat(index=index, code=f"P{index + 1:02d}", username=user.username,
                              user_id=user.pk, case_id=case.pk, reference=case.reference,
                              cookie=client.cookies["sessionid"].value))
    return {"seats": seats, "agencies": len(agencies)}


# --- the page's HTTP side ---------------------------------------------------------------

def http_request(port: int, method: str, path: str, cookies: dict, body: dict | None = None
                 ) -> tuple[int, dict, str]:
    """One request on a fresh connection (the status, headers, text); raises on a
    connection failure or timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                   "Host": f"127.0.0.1:{port}", "User-Agent": "bench-soak"}
        data = None
        if body is not None:
            data = urlencode(body)
            headers.update({"Content-Type": "application/x-www-form-urlencoded",
                            "Origin": f"http://127.0.0.1:{port}",
                            "Referer": f"http://127.0.0.1:{port}{path}"})
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        found = {}
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            found[name.strip()] = rest.split(";", 1)[0]
        return response.status, {"location": response.getheader("Location", ""),
                                 "cookies": found}, text
    finally:
        conn.close()


def form_fields(csrf: str, body: str, rng: random.Random) -> dict:
    """The note form as the page posts it: a finalised standard note, a minute ago."""
    from django.utils import timezone

    moment = timezone.localtime() - datetime.timedelta(minutes=1)
    return {
        "csrfmiddlewaretoken": csrf, "note_type": rng.choice(NOTE_TYPES),
        "occurred_day": str(moment.day), "occurred_month": str(moment.month),
        "occurred_year": str(moment.year), "occurred_time": moment.strftime("%H:%M"),
        "body": body, "sensitivity": "standard", "intent": "finalise",
    }


# --- the practitioners ----------------------------------------------------------------

@dataclass
class Save:
    who: int
    case_id: int
    stamp: str
    started: float  # perf_counter, just before the POST was sent
    answered: float | None = None
    status: str = ""  # "302" (saved), another status, or the exception's name
    note_id: int | None = None


@dataclass
class Receipt:
    at: float  # perf_counter
    live: bool  # on a synced connection (else: in the catch-up after `resume`)
    connection: int


@dataclass
class Soak:
    """What every practitioner shares: the saves, the outage's times, what arrived."""

    run_id: str
    saves: list[Save] = field(default_factory=list)
    by_stamp: dict[str, Save] = field(default_factory=dict)
    #: note id -> the stamp in its body (from any event frame carrying it)
    note_stamps: dict[int, str] = field(default_factory=dict)
    down_at: float | None = None  # perf_counter: Redis stopped
    up_at: float | None = None  # perf_counter: Redis answering again
    writing: bool = True


class Practitioner:
    """One open case page: its live connection, reconnecting as case_room.mjs does, and
    the notes its person saves through the note form."""

    def __init__(self, seat: Seat, port: int, soak: Soak, rng: random.Random, interval):
        self.seat, self.port, self.soak, self.rng, self.interval = seat, port, soak, rng, interval
        self.cookies = {"sessionid": seat.cookie}
        self.csrf = ""
        self.last_seq = 0
        self.pending_seq = 0
        self.synced = False
        self.stopping = False
        self.attempt = 0
        self.ws = None
        self.closed_by_page = False
        self.connections = 0
        self.connect_failures = 0
        self.closes: Counter = Counter()
        self.synced_at: list[float] = []  # perf_counter of each `synced`
        self.opened_at: list[float] = []  # perf_counter of each connection opened
        self.receipts: dict[int, Receipt] = {}
        self.duplicates = 0
        self.failures: list[str] = []
        self.refused = False
        self.frames = 0
        self.last_heard = 0.0
        self.ping_sent_at: float | None = None
        self.runner: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/cases/{self.seat.case_id}/"

    # --- the page load ---------------------------------------------------------------
    async def load_page(self, http) -> None:
        """The case page (its event number) and the note form (its CSRF token)."""
        status, headers, text = await http(self.port, "GET", f"/cases/{self.seat.case_id}/", self.cookies)
        match = PAGE_SEQ.search(text)
        if status != 200 or not match:
            raise BenchError(f"{self.seat.code}: the case page answered {status} without data-seq")
        self.last_seq = self.pending_seq = int(match[1])
        status, headers, text = await http(self.port, "GET", f"/cases/{self.seat.case_id}/notes/new/",
                                           self.cookies)
        token = CSRF_INPUT.search(text)
        cookie = headers["cookies"].get("csrftoken")
        if status != 200 or not token or not cookie:
            raise BenchError(f"{self.seat.code}: the note form answered {status} without a CSRF token")
        self.csrf = token[1]
        self.cookies["csrftoken"] = cookie

    # --- the live connection -----------------------------------------------------------
    async def run_live(self, first_synced: asyncio.Event) -> None:
        import websockets

        while not self.stopping and not self.refused:
            self.synced = False
            self.pending_seq = self.last_seq
            try:
                ws = await websockets.connect(
                    self.url, origin=websockets.Origin(f"http://127.0.0.1:{self.port}"),
                    additional_headers={"Cookie": f"sessionid={self.seat.cookie}"},
                    open_timeout=CONNECT_WAIT, close_timeout=2, ping_interval=None, max_size=2**22,
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:  # refused handshake, connection refused, timeout
                self.connect_failures += 1
                self.closes[f"connect failed: {error.__class__.__name__}"] += 1
                await self._backoff()
                continue
            self.ws = ws
            self.closed_by_page = False
            self.connections += 1
            self.opened_at.append(time.perf_counter())
            number = self.connections
            self.last_heard = time.monotonic()
            self.ping_sent_at = None
            timers = [asyncio.ensure_future(self._sync_timeout(ws)), asyncio.ensure_future(self._ping(ws))]
            try:
                await ws.send(json.dumps({"type": "resume", "after": self.last_seq}))
                async for raw in ws:
                    self._receive(raw, number, first_synced)
            except websockets.ConnectionClosed:
                pass
            except Exception as error:  # a bug here must not pass as a quiet practitioner
                self.failures.append(f"reader failed: {error!r}")
            finally:
                for timer in timers:
                    timer.cancel()
                await asyncio.gather(*timers, return_exceptions=True)
                self.ws = None
                self.synced = False
            code = ws.close_code
            if self.stopping:
                break
            if not self.closed_by_page:
                self.closes[f"closed by the server ({code})"] += 1
            if code == 4403:
                self.refused = True
                self.failures.append("refused (4403)")
                break
            await self._backoff()

    async def _backoff(self) -> None:
        ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** self.attempt)
        self.attempt += 1
        await asyncio.sleep(ceiling / 2 + self.rng.random() * ceiling / 2)

    async def _sync_timeout(self, ws) -> None:
        await asyncio.sleep(SYNC_TIMEOUT)
        if not self.synced:
            self.closes["not synced within 15 s: closed by the page"] += 1
            self.closed_by_page = True
            await ws.close()

    async def _ping(self, ws) -> None:
        """As the page: a ping every 25 s once synced; a ping with nothing heard since
        for 20 s closes the connection."""
        while True:
            await asyncio.sleep(PING_EVERY)
            now = time.monotonic()
            if self.ping_sent_at is not None and self.last_heard < self.ping_sent_at:
                if now - self.ping_sent_at > PONG_WAIT:
                    self.closes["no answer to a ping: closed by the page"] += 1
                    self.closed_by_page = True
                    await ws.close()
                    return
                continue
            if self.synced:
                await ws.send(json.dumps({"type": "ping"}))
                self.ping_sent_at = now

    def _seen(self, seq) -> None:
        if not isinstance(seq, int) or seq < 0:
            return
        if self.synced:
            self.last_seq = max(self.last_seq, seq)
        else:
            self.pending_seq = max(self.pending_seq, seq)

    def _receive(self, raw, number: int, first_synced: asyncio.Event) -> None:
        now = time.perf_counter()
        self.frames += 1
        self.last_heard = time.monotonic()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "event":
            self._seen(frame.get("seq"))
            note = frame.get("note")
            if frame.get("kind") != "note.created" or not isinstance(note, int):
                return
            if frame.get("level") != "full":
                self.failures.append(f"note {note} delivered at level {frame.get('level')}")
            match = STAMP.search(frame.get("html", ""))
            if match and match[1] == self.soak.run_id:
                self.soak.note_stamps[note] = f"{match[2]}:{match[3]}"
            if note in self.receipts:
                self.duplicates += 1
            else:
                self.receipts[note] = Receipt(at=now, live=self.synced, connection=number)
        elif kind == "synced":
            self._seen(frame.get("seq"))
            self.synced = True
            self.attempt = 0
            self.last_seq = max(self.last_seq, self.pending_seq)
            self.synced_at.append(now)
            first_synced.set()
        elif kind == "error":
            self.failures.append(f"error: {frame.get('code')} {frame.get('message')}")
            if not self.synced and self.ws is not None:
                asyncio.ensure_future(self.ws.close())
        elif kind == "reload":
            self.failures.append("told to reload the page (too far behind)")
        # presence, writing, pong: nothing to measure

    # --- the note form -------------------------------------------------------------------
    async def write_until(self, stop_at: float, http) -> None:
        low, high = self.interval
        await asyncio.sleep(self.rng.uniform(0, high))
        number = 0
        while time.perf_counter() < stop_at and not self.refused:
            number += 1
            stamp = f"{self.seat.code}:{number}"
            body = (f"{self.rng.choice(SENTENCES)} {self.rng.choice(SENTENCES)} "
                    f"[soak:{self.soak.run_id}:{stamp}]")
            fields = form_fields(self.csrf, body, self.rng)
            save = Save(who=self.seat.index, case_id=self.seat.case_id, stamp=stamp, started=0.0)
            self.soak.saves.append(save)
            self.soak.by_stamp[stamp] = save
            save.started = time.perf_counter()
            try:
                status, headers, text = await http(
                    self.port, "POST", f"/cases/{self.seat.case_id}/notes/new/", self.cookies, fields)
            except Exception as error:
                save.answered, save.status = time.perf_counter(), error.__class__.__name__
                self.failures.append(f"save failed: {error!r}")
            else:
                save.answered, save.status = time.perf_counter(), str(status)
                found = NOTE_LOCATION.search(headers["location"]) if status == 302 else None
                if found:
                    save.note_id = int(found[2])
                else:
                    title = re.search(r"<title>\s*(.*?)\s*</title>", text, re.S)
                    summary = re.sub(r"\S+ family", "<case> family", re.sub(r"\s+", " ", title[1])) \
                        if title else text[:80]
                    self.failures.append(f"save answered {status} {headers['location']}: {summary}")
            # The next note a few seconds on, but none begun after the end.
            await asyncio.sleep(min(self.rng.uniform(low, high), max(0.0, stop_at - time.perf_counter())))

    async def close(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), timeout=5)
        if self.runner is not None:
            self.runner.cancel()
            await asyncio.gather(self.runner, return_exceptions=True)


# --- the run ----------------------------------------------------------------------------

def database_notes(case_ids: list[int]) -> list[tuple[int, int, str]]:
    """(note id, case id, body) of every finalised standard note in the run's cases."""
    from django.db import close_old_connections

    from casenotes.models import CaseNote

    close_old_connections()
    return list(CaseNote.objects.filter(case_id__in=case_ids, state=CaseNote.State.FINAL,
                                        sensitivity=CaseNote.Sensitivity.STANDARD)
                .order_by("pk").values_list("pk", "case_id", "body"))


def case_last_seqs(case_ids: list[int]) -> dict[int, int]:
    from django.db.models import Max

    from casenotes.models import CaseEvent

    rows = CaseEvent.objects.filter(case_id__in=case_ids).values("case_id").annotate(seq=Max("seq"))
    return {row["case_id"]: row["seq"] for row in rows}


def missing_deliveries(people: list[Practitioner], notes: list[tuple[int, int, str]]) -> int:
    by_case: dict[int, list[Practitioner]] = defaultdict(list)
    for p in people:
        by_case[p.seat.case_id].append(p)
    return sum(1 for note_id, case_id, _ in notes for p in by_case[case_id] if note_id not in p.receipts)


async def run_soak(args, world: dict, servers: list[Server], redis_server: RedisServer,
                   deadline: Deadline) -> dict:
    loop = asyncio.get_running_loop()
    http_pool = ThreadPoolExecutor(max_workers=len(world["seats"]) + 4, thread_name_prefix="soak-http")
    db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-db")

    async def http(*request_args):
        return await loop.run_in_executor(http_pool, lambda: http_request(*request_args))

    async def db(fn, *fn_args):
        return await loop.run_in_executor(db_pool, lambda: fn(*fn_args))

    soak = Soak(run_id=args.run_id)
    rng = random.Random(args.seed)
    ports = [s.port for s in servers]
    people = [Practitioner(seat, ports[seat.index % len(ports)], soak, random.Random(rng.random()),
                           args.interval) for seat in world["seats"]]
    case_ids = sorted({seat.case_id for seat in world["seats"]})
    samples: list[dict] = []
    result: dict = {"people": people, "soak": soak, "samples": samples}
    own_tasks: list[asyncio.Task] = []

    def sample(label: str) -> dict:
        row = {"label": label, "at": time.perf_counter(), "load": os.getloadavg()[0],
               "rss": [s.rss() for s in servers],
               "synced": sum(1 for p in people if p.synced)}
        samples.append(row)
        return row

    try:
        result["rss_ready"] = [s.rss() for s in servers]
        log(f"{len(people)} practitioners: loading their case pages and note forms")
        limit = asyncio.Semaphore(8)

        async def load(p):
            async with limit:
                await p.load_page(http)

        await asyncio.wait_for(asyncio.gather(*(load(p) for p in people)), timeout=120)
        log(f"{len(people)} practitioners: opening their case rooms")
        first = {p.seat.index: asyncio.Event() for p in people}
        for p in people:
            p.runner = asyncio.ensure_future(p.run_live(first[p.seat.index]))
            await asyncio.sleep(0.05)  # pages open over a few seconds, not all at once
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in first.values())), timeout=60)
        except TimeoutError:
            raise BenchError(f"only {sum(e.is_set() for e in first.values())} of {len(people)} "
                              "practitioners synced within 60 s") from None
        await asyncio.sleep(2)  # the joins' presence broadcasts
        deadline.check("before the soak")
        start_row = sample("start")
        result["rss_start"] = start_row["rss"]
        memory = ", ".join(f"{r:.0f}" for r in start_row["rss"])
        log(f"soak: {args.duration:g} s; servers' memory {memory} MB")

        started = result["started"] = time.perf_counter()
        stop_at = started + args.duration
        down_in = args.duration / 2 - args.outage / 2
        writers = [asyncio.ensure_future(p.write_until(stop_at, http)) for p in people]
        own_tasks.extend(writers)

        async def outage():
            await asyncio.sleep(down_in)
            log(f"stopping Redis (port {redis_server.port}) for {args.outage:g} s")
            soak.down_at = time.perf_counter()
            await loop.run_in_executor(None, redis_server.stop)
            await asyncio.sleep(args.outage)
            await loop.run_in_executor(None, redis_server.start)
            soak.up_at = time.perf_counter()
            log(f"Redis is back (empty); {sum(1 for p in people if p.synced)} of {len(people)} "
                "pages synced at this moment")

        async def monitor():
            while True:
                await asyncio.sleep(SAMPLE_EVERY)
                row = sample("during")
                answered = [s for s in soak.saves if s.answered is not None]
                log(f"  {row['at'] - started:5.0f} s: {len(answered)} saves answered, "
                    f"{sum(len(p.receipts) for p in people)} deliveries, "
                    f"{row['synced']}/{len(people)} synced, "
                    f"{sum(p.connections for p in people) - len(people)} reconnects, memory "
                    f"{', '.join(f'{r:.0f}' for r in row['rss'])} MB, load {row['load']:.2f}")
                if not all(s.alive() for s in servers):
                    log("a server process has exited")

        background = [asyncio.ensure_future(outage()), asyncio.ensure_future(monitor())]
        own_tasks.extend(background)
        try:
            await asyncio.wait_for(asyncio.gather(*writers, background[0]),
                                   timeout=args.duration + HTTP_TIMEOUT + 60)
        finally:
            background[1].cancel()
            await asyncio.gather(background[1], return_exceptions=True)
        result["wrote_for"] = time.perf_counter() - started
        log(f"writing stopped after {result['wrote_for']:.0f} s: {len(soak.saves)} saves; waiting "
            f"(at most {SETTLE_WAIT:.0f} s) for every page to have every note")

        # Settle: every finalised standard note in the database, at every member of its case.
        settle_until = time.monotonic() + SETTLE_WAIT
        missing = -1
        while time.monotonic() < settle_until:
            notes = await db(database_notes, case_ids)
            missing = missing_deliveries(people, notes)
            if missing == 0 and all(p.synced for p in people):
                break
            await asyncio.sleep(1)
        result["settled_in"] = SETTLE_WAIT - (settle_until - time.monotonic())
        end_row = sample("end")
        result["rss_end"] = end_row["rss"]
        result["last_seqs"] = await db(case_last_seqs, case_ids)
        result["synced_at_end"] = sum(1 for p in people if p.synced)
        result["synced_pages"] = {p.seat.index for p in people if p.synced}
        log(f"settled ({missing} deliveries still missing) in {result['settled_in']:.0f} s; servers' memory "
            f"{', '.join(f'{r:.0f}' for r in end_row['rss'])} MB")
        return result
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
        for task in own_tasks:
            task.cancel()
        await asyncio.gather(*own_tasks, return_exceptions=True)
        from django.db import connections

        await db(connections.close_all)
        http_pool.shutdown(wait=False, cancel_futures=True)
        db_pool.shutdown(wait=True)


# --- after the run ------------------------------------------------------------------------

def left_behind(case_ids: list[int], redis_server: RedisServer) -> dict:
    """Once every page has closed: presence rows and case-room group memberships left
    after (bounded) time for the servers' disconnects."""
    from casenotes.models import RoomPresence

    result = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = {"presence rows": RoomPresence.objects.filter(case_id__in=case_ids).count(),
                  "room-group memberships": redis_server.case_group_members()}
        if not any(result.values()):
            break
        time.sleep(0.5)
    return result


def analyse(result: dict, notes: list[tuple[int, int, str]], run_id: str) -> dict:
    people: list[Practitioner] = result["people"]
    soak: Soak = result["soak"]
    by_case: dict[int, list[Practitioner]] = defaultdict(list)
    for p in people:
        by_case[p.seat.case_id].append(p)
    down, up = soak.down_at, soak.up_at
    note_save: dict[int, Save] = {}
    unmatched = 0
    for note_id, _case_id, body in notes:
        match = STAMP.search(body)
        save = soak.by_stamp.get(f"{match[2]}:{match[3]}") if match and match[1] == run_id else None
        if save is None:
            unmatched += 1
        else:
            note_save[note_id] = save
    expected = received = 0
    lost: list[str] = []
    lost_by_page: Counter = Counter()
    live, caught_up, outage_notes = [], [], []
    live_before, live_after = [], []
    outage_lost = 0
    for note_id, case_id, _ in notes:
        save = note_save.get(note_id)
        in_outage = save is not None and down is not None and up is not None \
            and down <= save.started < up
        for p in by_case[case_id]:
            expected += 1
            got = p.receipts.get(note_id)
            if got is None:
                lost.append(f"note {note_id} ({save.stamp if save else '?'}) to {p.seat.code}")
                lost_by_page[p.seat.index] += 1
                outage_lost += in_outage
                continue
            received += 1
            if save is None:
                continue
            latency = (got.at - save.started) * 1000
            if in_outage:
                outage_notes.append(latency)
            elif got.live:
                live.append(latency)
                if down is None or save.started < down:
                    live_before.append(latency)
                elif up is not None and save.started >= up:
                    live_after.append(latency)
            else:
                caught_up.append(latency)
    saves = soak.saves
    saved = [s for s in saves if s.status == "302"]
    during = [s for s in saves if down is not None and up is not None and down <= s.started < up]
    page_normal = [(s.answered - s.started) * 1000 for s in saved if s not in during]
    page_outage = [(s.answered - s.started) * 1000 for s in during if s.answered is not None]
    # Back in sync after Redis returned: each page's first `synced` after that moment.
    resync = []
    not_resynced = 0
    if up is not None:
        for p in people:
            later = [t for t in p.synced_at if t >= up]
            if later:
                resync.append((later[0] - up) * 1000)
            else:
                not_resynced += 1  # kept its connection through the restart, or never back
    closes: Counter = Counter()
    for p in people:
        closes.update(p.closes)
    by_phase: dict[str, Counter] = defaultdict(Counter)
    for s in saves:
        if down is None or s.started < down:
            phase = "before the outage"
        elif up is None or s.started < up:
            phase = "while Redis was down"
        elif s.started < up + 60:
            phase = "in the 60 s after Redis returned"
        else:
            phase = "later"
        by_phase[phase][s.status or "no answer"] += 1
    kinds: Counter = Counter()
    for p in people:
        for failure in p.failures:
            kinds[failure[:200]] += 1
    last_seqs = result.get("last_seqs", {})
    converged = sum(1 for p in people if p.last_seq == last_seqs.get(p.seat.case_id, 0))
    return {
        "saves": len(saves), "statuses": Counter(s.status or "no answer" for s in saves),
        "notes": len(notes), "unmatched": unmatched, "expected": expected, "received": received,
        "lost": lost, "lost_by_page": lost_by_page, "duplicates": sum(p.duplicates for p in people),
        "live": live, "live_before": live_before, "live_after": live_after, "caught_up": caught_up,
        "outage_notes": outage_notes, "outage_lost": outage_lost,
        "during": during, "during_saved": [s for s in during if s.status == "302"],
        "page_normal": page_normal, "page_outage": page_outage,
        "reconnects": sum(p.connections for p in people) - len(people),
        "connect_failures": sum(p.connect_failures for p in people), "closes": closes,
        "resync": resync, "not_resynced": not_resynced, "converged": converged,
        "failures": {p.seat.code: p.failures for p in people if p.failures},
        "failure_kinds": kinds, "by_phase": by_phase,
        "frames": sum(p.frames for p in people),
        "down_at": down, "outage": ((up - down) * 1000) if down is not None and up is not None else math.nan,
    }


def report(header: list[str], a: dict, result: dict, servers: list[Server], left: dict,
           args, deadlocks: int) -> bool:
    print()
    for line in header:
        print(line)
    print()
    statuses = ", ".join(f"{k} x {v}" for k, v in a["statuses"].most_common())
    print(f"notes saved: {a['statuses'].get('302', 0)} of {a['saves']} saves answered with the saved "
          f"note's redirect ({statuses}) in {result['wrote_for']:.0f} s "
          f"({a['saves'] / result['wrote_for']:.1f}/s); {a['notes']} finalised standard notes in the "
          f"database" + (f", {a['unmatched']} not from this run's saves" if a["unmatched"] else ""))
    print(f"notes delivered: {a['received']} of {a['expected']} deliveries expected (each note to the "
          f"{args.per_case} members of its case), {a['duplicates']} duplicates")
    lost = len(a["lost"])
    print(f"lost: {lost} ({'PASS' if lost == 0 else 'FAIL'}: must be 0)")
    people = result["people"]
    started = result["started"]
    for index, count in sorted(a["lost_by_page"].items()):
        p = people[index]
        live = [r.at for r in p.receipts.values() if r.connection == p.connections]
        kept = a["down_at"] is not None and p.opened_at[-1] < a["down_at"]
        server = p.seat.index % len(servers) + 1
        print(f"  {p.seat.code} ({p.seat.reference}, server {server}): {count} notes missing; "
              f"{p.connections} connection(s), the last opened at {p.opened_at[-1] - started:.0f} s"
              + (" (kept through the Redis restart)" if kept else "")
              + f", {'synced' if index in result['synced_pages'] else 'not synced'} at the end; the last "
              f"note on it arrived at {max(live) - started if live else math.nan:.0f} s")
    if a["lost"]:
        print(f"  (Redis stopped at {(a['down_at'] or math.nan) - started:.0f} s; e.g. {a['lost'][0]})")
    for phase, statuses in a["by_phase"].items():
        print(f"  saves begun {phase}: " + ", ".join(f"{k} x {v}" for k, v in statuses.most_common()))
    print(f"save→delivery latency, live: {ms(a['live'])}")
    print(f"  notes saved before the outage: {ms(a['live_before'])}; after Redis returned: "
          f"{ms(a['live_after'])}")
    print(f"save→delivery latency, caught up by resume after a reconnect: {ms(a['caught_up'])}")
    print(f"page save (POST → redirect): {ms(a['page_normal'])}; while Redis was down: "
          f"{ms(a['page_outage'])}")
    during, during_saved = a["during"], a["during_saved"]
    outage_ok = bool(during_saved) and a["outage_lost"] == 0
    stopped_at = args.duration / 2 - args.outage / 2
    print(f"Redis down for {a['outage'] / 1000:.1f} s (stopped at {stopped_at:.0f} s, "
          f"back empty): {len(during_saved)} of {len(during)} saves made meanwhile succeeded, their "
          f"notes delivered {len(a['outage_notes'])} times, {a['outage_lost']} missing, save→delivery "
          f"{ms(a['outage_notes'])} ({'PASS' if outage_ok else 'FAIL'}: at least one, all delivered)")
    closes = ", ".join(f"{k} x {v}" for k, v in a["closes"].most_common())
    print(f"reconnects: {a['reconnects']} ({a['connect_failures']} attempts refused or failed; closes: "
          f"{closes or 'none'})")
    print(f"back in sync after Redis returned: {len(a['resync'])} pages, {ms(a['resync'])}"
          + (f"; {a['not_resynced']} with no new sync since (kept their connection, or never back)"
             if a["not_resynced"] else ""))
    print(f"pages at their case's last event number at the end: {a['converged']}/{len(result['people'])}, "
          f"synced: {result['synced_at_end']}/{len(result['people'])}")
    for i in range(len(servers)):
        peak = max((row["rss"][i] for row in result["samples"]), default=math.nan)
        print(f"server {i + 1} memory (VmRSS): {result['rss_ready'][i]:.0f} MB when started, "
              f"{result['rss_start'][i]:.0f} MB at the start of the soak, {result['rss_end'][i]:.0f} MB "
              f"at the end (peak sampled {peak:.0f} MB)")
    loads = [row["load"] for row in result["samples"]]
    print(f"load average (1 min) during the soak: {min(loads):.2f}-{max(loads):.2f} on "
          f"{os.cpu_count()} CPUs; frames received by all pages: {a['frames']}")
    print(f"deadlocks detected by PostgreSQL in {DB_NAME}: {deadlocks} (each fails one transaction, "
          "after deadlock_timeout)")
    unaudited = [s.count("live deliveries could not be audited") for s in servers]
    killed = [s.count("took too long to shut down and was killed") for s in servers]
    print(f"live delivery batches not sent because their audit failed (servers' logs): "
          f"{' + '.join(map(str, unaudited))}; connections whose handler Daphne killed (not closed "
          f"within its 10 s): {' + '.join(map(str, killed))}")
    print("left behind after every page closed: "
          + ", ".join(f"{count} {what}" for what, count in left.items()))
    failed = a["failures"]
    print(f"practitioners with a failure: {len(failed)} ({'PASS' if not failed else 'FAIL'}: must be 0)"
          + (f": {', '.join(sorted(failed))}" if failed else ""))
    for line, count in a["failure_kinds"].most_common(10):
        print(f"  {count} x {line}")
    converged = a["converged"] == len(result["people"]) and result["synced_at_end"] == len(result["people"])
    passed = lost == 0 and not failed and outage_ok and converged
    print(f"overall: {'PASS' if passed else 'FAIL'}")
    problems = [f"server {i + 1}: {line}" for i, s in enumerate(servers) for line in s.problems()]
    print_problems("server logs (var/bench-soak-daphne-*.log) report:", problems)
    return passed


def _interval(text: str) -> tuple[float, float]:
    return parse_interval(text, 500, 120_000)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--duration", type=float, default=300, help="seconds of saving notes (300)")
    parser.add_argument("--cases", type=int, default=5, help="cases, one team each (5)")
    parser.add_argument("--per-case", type=int, default=10, help="practitioners in each case room (10)")
    parser.add_argument("--interval", type=_interval, default="4000-12000",
                        help="milliseconds between one practitioner's saves, MIN-MAX (4000-12000)")
    parser.add_argument("--outage", type=float, default=5, help="seconds Redis stays down (5)")
    parser.add_argument("--servers", type=int, default=2, help="Daphne processes (2)")
    add_pg_admin_url(parser)
    parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    parser.add_argument("--budget", type=float, help="seconds the whole run may take "
                        "(default: --duration + 480)")
    args = parser.parse_args()
    if not 20 <= args.duration <= 3600:
        parser.error("--duration: 20..3600 seconds")
    if not 1 <= args.cases <= 8 or not 2 <= args.per_case <= 40:
        parser.error("--cases: 1..8; --per-case: 2..40")
    if not 1 <= args.servers <= 8:
        parser.error("--servers: 1..8")
    if not 1 <= args.outage <= min(60, args.duration / 2):
        parser.error("--outage: 1..60 seconds, and at most half of --duration")
    args.budget = args.budget or args.duration + 480
    args.run_id = uuid.uuid4().hex[:8]
    deadline = Deadline(args.budget, "shorten --duration")
    load_before = starting_load()
    on_sigterm()
    # The hard deadline: whatever is running then, the clean-up in main()'s finally runs.
    alarm_after(int(args.budget) + 1, "out of time (--budget); cleaning up")

    database = open_scratch_postgres(
        args.pg_admin_url, DB_NAME, avoid_ci=True,
        needed="; it is needed (pg_ctlcluster --skip-systemctl-redirect 15 main start)")
    if database is None:
        return 2
    (ROOT / "var").mkdir(exist_ok=True)
    try:
        redis_server = RedisServer(ROOT / "var" / "bench-soak-redis.log")
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2

    env = bench_env(database.url, redis_url=redis_server.url,
                    unset=("LIVE_RATE_BURST", "LIVE_RATE_PER_SECOND", "CHANNEL_LAYER_CAPACITY",
                           "REDIS_MAX_CONNECTIONS"))
    servers: list[Server] = []
    django_ready = False
    try:
        try:
            redis_server.start()
            log(f"Redis of this run's own on 127.0.0.1:{redis_server.port} (no persistence; "
                "log var/bench-soak-redis.log)")
            log(f"database: {database.describe()}")
            database.create()
            log("migrating")
            manage(env, "migrate", "--noinput", error=BenchError)
            deadline.check("migrating")
            setup_django(env, also=("LIVE_RATE_BURST", "LIVE_RATE_PER_SECOND"))
            django_ready = True
            people = args.cases * args.per_case
            log(f"{args.cases} teams and cases, {people} practitioners, through the actions; signing in")
            world = build(args.cases, args.per_case)
            for i in range(args.servers):
                servers.append(Server(env, ROOT / "var" / f"bench-soak-daphne-{i + 1}.log"))
            for server in servers:
                server.wait_ready(60, BenchError)
        except BenchError as error:
            print(f"bench: could not run: {error}", file=sys.stderr)
            return 2
        log(f"{len(servers)} Daphne on 127.0.0.1:" + ", ".join(str(s.port) for s in servers)
            + " (logs var/bench-soak-daphne-*.log)")

        async def go():
            return await asyncio.wait_for(run_soak(args, world, servers, redis_server, deadline),
                                          timeout=max(deadline.left() - 30, 1))

        try:
            result = asyncio.run(go())
        except BenchError as error:
            print(f"bench: could not run: {error}", file=sys.stderr)
            return 2
        except TimeoutError:
            print("bench: the soak did not finish within --budget (see var/bench-soak-*.log)",
                  file=sys.stderr)
            return 1
        from django.db import connections

        connections.close_all()
        case_ids = sorted({seat.case_id for seat in world["seats"]})
        notes = database_notes(case_ids)
        left = left_behind(case_ids, redis_server)
        time.sleep(1.5)  # backends report their statistics at most once a second
        deadlocks = database.deadlocks()
        analysis = analyse(result, notes, args.run_id)

        from django.conf import settings

        layer = settings.CHANNEL_LAYERS["default"]
        low, high = args.interval
        header = [
            f"Soak test, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            describe_machine(load_before),
            f"database: {database.describe()}",
            f"channel layer: {layer['BACKEND'].rsplit('.', 1)[-1]}, its own redis-server on "
            f"127.0.0.1:{redis_server.port} ({_redis_version(redis_server.binary)}), capacity "
            f"{layer['CONFIG'].get('capacity')}; {len(servers)} Daphne processes, practitioners "
            "alternating between them",
            f"{args.cases} cases, {args.cases * args.per_case} practitioners ({args.per_case} a case, "
            f"{world['agencies']} agencies), each saving a finalised standard note through the note form "
            f"every {low:g}-{high:g} s for {args.duration:g} s; Redis stopped half-way for {args.outage:g} s",
            f"rate limit per connection: burst {settings.LIVE_RATE_BURST}, "
            f"{settings.LIVE_RATE_PER_SECOND:g}/s (the settings'; a page sends resume and a ping every 25 s)",
        ]
        passed = report(header, analysis, result, servers, left, args, deadlocks)
        return 0 if passed else 1
    finally:
        signal.alarm(0)
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        with contextlib.suppress(Exception):
            redis_server.close()
        if django_ready:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        drop_at_end(database, f"removed the scratch database {DB_NAME}, stopped the servers and Redis")


def _redis_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout
        found = re.search(r"v=(\S+)", out)
        return f"Redis {found[1]}" if found else "Redis"
    except (OSError, subprocess.SubprocessError):
        return "Redis"


if __name__ == "__main__":
    sys.exit(main())
