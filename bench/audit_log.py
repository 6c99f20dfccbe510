"""Audit log at 1,000,000 entries: the IG searches, and what auditing costs a note save.

    .venv/bin/python bench/audit_log.py                 # 10,000 then 1,000,000 entries
    .venv/bin/python bench/audit_log.py --explain       # and EXPLAIN ANALYZE each search at 1M
    .venv/bin/python bench/audit_log.py --help          # sizes, counts, addresses

Two questions, two targets:

1. Do the information-governance searches of the access log stay quick as it grows?
   Through `audit.selectors.search_log` (the first page, as the IG page asks for it,
   including the AUDIT_SEARCHED entry it writes), as the demo IG officer, N timed runs
   after a warm-up of each of: by case (LogFilter(case_ids=(id,))), by user
   (LogFilter(user_id=id)) and by date (a one-day window, as the form makes it), first
   with 10,000 entries in the log and then with 1,000,000. Target: p95 at 1,000,000 /
   p95 at 10,000 <= 1.5 for each search.
2. What do the note's history and audit entries cost a save? Finalised standard notes
   saved through `casenotes.actions.do_create_note` as the demo social worker on the
   demo case FS-24-0117, single thread, for a fixed time, with history and audit ON
   (as the product runs) and OFF (in this process only: `record` as imported by
   casenotes.actions.notes made a no-op, `NOTE_HISTORY.create_historical_record` made a
   no-op and SIMPLE_HISTORY_ENABLED off), alternating ON and OFF over a few rounds, on
   the 1,000,000-entry log. Live notices are out of both: `casenotes.events.publish` is
   a no-op in both and the channel layer is the in-memory one. Target: saves/s ON /
   saves/s OFF >= 0.7.

The searched user and case are "subjects" with a fixed number of entries (300 by
default) spread over the two years, so each search reads the same amount at both
sizes; only the table around them grows. The pair searched at 10,000 was planted among
the first 10,000 entries; the pair searched at 1,000,000 the same way among the
990,000 added (a real log interleaves a user's entries through the whole table); the
first pair is measured again at 1,000,000 for comparison. The day searched is a
weekday about 100 days back.

Setup, all on loopback and all removed afterwards: a scratch PostgreSQL database
`bench_audit` (dropped first if an earlier run left it), migrated by `manage.py
migrate` and seeded by `manage.py seed_demo` (DEBUG=1 for the seed only) in
subprocesses, DJANGO_SETTINGS_MODULE=workspace.settings.test. The filler entries are
benchmark scaffolding written with COPY straight into audit_auditevent (the
append-only triggers allow inserts): ~500 users (uneven: a few heavy, many light) in
teams of five, ~20,000 case ids (teams mostly read their own cases), a mix of actions
(case and note reads most, sign-ins, searches, note writes, a few refusals and
emergency accesses), spread over two years, weekdays and working hours mostly, in time
order. Their hash columns are computed: each filler entry carries the real SHA-256
chain value (audit.chain.entry_hash) linked on from the seed's entries, so the trail
stays verifiable (checked in full at 10,000). Then VACUUM ANALYZE and a CHECKPOINT (as a
settled table would be). No Redis is used.

Every wait is bounded: PostgreSQL statements time out (60 s), the subprocesses have a
time limit, and the whole run has a deadline (--budget). The scratch database is
dropped at the end, on error and on SIGTERM too. Exit status 0 when both targets hold,
1 when one does not, 2 when it could not run. See docs/performance.md for what it
measured.
"""

import contextlib
import cProfile
import datetime
import io
import itertools
import pstats
import random
import signal
import sys
import time

from _common import (
    BenchError,
    Deadline,
    StatementTimer,
    add_pg_admin_url,
    alarm_after,
    bench_env,
    describe_machine,
    drop_at_end,
    explain,
    gc_paused,
    log,
    make_parser,
    manage,
    on_sigterm,
    open_scratch_postgres,
    percentile,
    set_statement_timeout,
    setup_django,
    starting_load,
    statement_label,
)

DB_NAME = "bench_audit"
CASE_REFERENCE = "FS-24-0117"
WRITER = "social.worker"
IG_OFFICER = "ig.officer"
TARGET_SEARCH_RATIO = 1.5
TARGET_SAVE_RATIO = 0.7
COPY_CHUNK = 50_000
SPAN_DAYS = 730
#: Filler ids: users and cases that are not in the scratch database's own tables (an
#: entry keeps an id, not a foreign key, so an entry outlives what it names).
USER_BASE, CASE_BASE = 10_001, 100_001
SUBJECT_USERS = (19_001, 19_002)  # searched at the small size, at the large size
SUBJECT_CASES = (190_001, 190_002)

_FIRST = ["sarah", "james", "emma", "daniel", "laura", "craig", "kelly", "lee", "gemma", "wayne",
          "hayley", "ryan", "stacey", "dean", "natalie", "marcus", "joanne", "tariq", "agnieszka",
          "kwame", "shauna", "paul", "leanne", "darren", "priya", "owen", "ruth", "adam"]
_LAST = ["ashby", "blackwood", "carlton", "dunmore", "ellerby", "fairfield", "greenham", "hartley",
         "kingsford", "langley", "marsh", "newbury", "oakes", "pemberton", "ravenscroft", "shelton",
         "thornton", "wadsworth", "whitby", "okoro", "lund", "reid", "hale", "begum"]
_AGENCIES = [("Northfield Children's Services", "Social worker", 5),
             ("Northfield Children's Services", "Team manager", 1),
             ("Northfield Children's Services", "Family support worker", 2),
             ("Northfield Mental Health NHS Trust", "Mental health practitioner", 1),
             ("Probation Service", "Probation officer", 1),
             ("Safe Homes Domestic Abuse Service", "Domestic abuse (victim) worker", 1),
             ("Open Door Recovery Service", "Recovery worker", 1)]
_BROWSERS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36",
             "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.6 Mobile/15E148 Safari/604.1"]
_SURNAMES = ["Ashworth", "Begum", "Cole", "Hartley", "Kingsford", "Oakes", "Whitby", "Pemberton"]


# --- the filler entries: benchmark scaffolding ----------------------------------------

class Population:
    """Who the filler entries are by and about: users in teams of five (uneven: a
    lognormal weight each), case ids in blocks per team (uneven too), and a mix of
    actions weighted as a working day's log is."""

    def __init__(self, rng: random.Random, users: int, cases: int):
        from audit.models import AuditAction as A

        self.rng = rng
        self.users = users
        self.teams = max(1, users // 5)
        self.user_cum = list(itertools.accumulate(rng.lognormvariate(0, 0.8) for _ in range(users)))
        weights = [rng.lognormvariate(0, 1.0) for _ in range(cases)]
        per_team = max(1, cases // self.teams)
        self.case_ids = [CASE_BASE + i for i in range(cases)]
        self.team_cases = []
        for t in range(self.teams):
            block = slice(t * per_team, (t + 1) * per_team if t < self.teams - 1 else cases)
            self.team_cases.append((self.case_ids[block], list(itertools.accumulate(weights[block]))))
        self.all_cum = list(itertools.accumulate(weights))
        roles = [(agency, role) for agency, role, n in _AGENCIES for _ in range(n)]
        self.profiles = {}
        for u in range(users):
            self.profiles[USER_BASE + u] = self._profile(u, roles[u % len(roles)])
        for n, uid in enumerate(SUBJECT_USERS):
            self.profiles[uid] = self._profile(users + n, roles[0])
        # (action, weight, about a case, object type, outcome)
        self.actions = [
            (A.CASE_VIEWED, 30, True, "case", "allowed"),
            (A.NOTE_VIEWED, 16, True, "note", "allowed"),
            (A.CASELOAD_VIEWED, 13, False, "caseload", "allowed"),
            (A.NOTE_CREATED, 6, True, "note", "allowed"),
            (A.NOTE_FINALISED, 5, True, "note", "allowed"),
            (A.NOTE_UPDATED, 4, True, "note", "allowed"),
            (A.NOTE_FORM_VIEWED, 5, True, "case", "allowed"),
            (A.SEARCHED, 5, False, "search", "allowed"),
            (A.LOGIN, 5, False, "user", "allowed"),
            (A.LOGOUT, 3, False, "user", "allowed"),
            (A.LIVE_JOINED, 4, True, "case", "allowed"),
            (A.TEAM_VIEWED, 1.5, False, "team", "allowed"),
            (A.ADDENDUM_ADDED, 1, True, "addendum", "allowed"),
            (A.PERSON_ADDED, 0.5, True, "person", "allowed"),
            (A.NOTE_HISTORY_VIEWED, 0.5, True, "note", "allowed"),
            (A.ACCESS_DENIED, 0.4, True, "case", "denied"),
            (A.LOGIN_FAILED, 0.3, False, "user", "denied"),
            (A.BREAK_GLASS_OPENED, 0.1, True, "case", "allowed"),
        ]
        self.action_cum = list(itertools.accumulate(a[1] for a in self.actions))
        self.case_actions = [a for a in self.actions if a[2]]
        self.case_action_cum = list(itertools.accumulate(a[1] for a in self.case_actions))

    def _profile(self, n: int, agency_role: tuple[str, str]) -> tuple:
        label = f"{_FIRST[n % len(_FIRST)]}.{_LAST[(n // len(_FIRST)) % len(_LAST)]}{n // 700 or ''}"
        team = n // 5 % self.teams
        ip = f"10.{20 + team % 200}.{n % 250}.{(n * 7) % 250 + 1}"
        return label, agency_role[0], agency_role[1], ip, _BROWSERS[n % 3], team

    def _user(self) -> int:
        return USER_BASE + self.rng.choices(range(self.users), cum_weights=self.user_cum)[0]

    def _case_for(self, team: int) -> int:
        rng = self.rng
        if rng.random() < 0.85:
            ids, cum = self.team_cases[team]
            return rng.choices(ids, cum_weights=cum)[0]
        return rng.choices(self.case_ids, cum_weights=self.all_cum)[0]

    def row(self, when: datetime.datetime, *, user: int | None = None, case: int | None = None) -> tuple:
        """One entry's values, in chain.FIELDS order."""
        rng = self.rng
        if case is not None:
            action, _w, about_case, object_type, outcome = rng.choices(
                self.case_actions, cum_weights=self.case_action_cum)[0]
        else:
            action, _w, about_case, object_type, outcome = rng.choices(
                self.actions, cum_weights=self.action_cum)[0]
        actor = user if user is not None else self._user()
        label, agency, role, ip, agent, team = self.profiles[actor]
        case_id = (case if case is not None else self._case_for(team)) if about_case else None
        reason, break_glass = "", None
        if object_type == "case":
            object_id = str(case_id)
        elif object_type in ("note", "addendum", "person"):
            object_id = str(rng.randint(1, 3_000_000))
        elif object_type == "user":
            object_id = str(actor)
        elif object_type == "team":
            object_id = str(team + 1)
        else:
            object_id = ""
        if action == 207:  # searched
            reason = f"q={rng.choice(_SURNAMES)}"
        elif outcome == "denied" and case_id is not None:
            reason = "view_case: not working on this case"
        elif action == 540:  # emergency access opened
            break_glass = rng.randint(1, 20_000)
            reason = "Child protection enquiry out of hours"
        if action == 102:  # sign-in failed: no account id, the name typed
            actor_id, agency, role = None, "", ""
        else:
            actor_id = actor
        return (when, actor_id, label, agency, role, ip, agent, f"{rng.getrandbits(128):032x}",
                int(action), outcome, object_type, object_id, case_id, reason, break_glass)


def entry_times(count: int, rng: random.Random, end_day: datetime.date) -> list[float]:
    """`count` moments (epoch seconds, ascending) over the SPAN_DAYS days before
    `end_day`: weekdays busier than weekends, 88% in working hours."""
    first = datetime.datetime.combine(end_day - datetime.timedelta(days=SPAN_DAYS), datetime.time.min,
                                      tzinfo=datetime.UTC)
    days = [first + datetime.timedelta(days=d) for d in range(SPAN_DAYS)]
    weights = [1.0 if day.weekday() < 5 else 0.15 for day in days]
    starts = [day.timestamp() for day in days]
    chosen = rng.choices(starts, weights=weights, k=count)
    out = []
    for start in chosen:
        if rng.random() < 0.88:
            out.append(start + 8 * 3600 + rng.random() * 10 * 3600)
        else:
            out.append(start + rng.random() * 86400)
    out.sort()
    return out


def load_entries(count: int, population: Population, subject: tuple[int, int], per_subject: int,
                 rng: random.Random, deadline: Deadline) -> str:
    """Append `count` filler entries (COPY, in chunks, in one transaction under the
    chain's append lock), `per_subject` of them by the subject user and as many about
    the subject case, at random places among them. Returns the new head hash."""
    from django.db import connection, transaction

    from audit import chain
    from audit.models import AuditEvent

    subject_user, subject_case = subject
    times = entry_times(count, rng, datetime.date.today())
    planted = rng.sample(range(count), 2 * per_subject)
    by_user, about_case = set(planted[:per_subject]), set(planted[per_subject:])
    columns = ", ".join((*chain.FIELDS, "prev_hash", "entry_hash"))
    utc = datetime.UTC
    with transaction.atomic():
        chain.lock_for_append()
        prev = chain.head_hash()
        with connection.cursor() as cursor:
            for start in range(0, count, COPY_CHUNK):
                with cursor.cursor.copy(f"COPY {AuditEvent._meta.db_table} ({columns}) FROM STDIN") as copy:
                    for i in range(start, min(count, start + COPY_CHUNK)):
                        when = datetime.datetime.fromtimestamp(times[i], utc)
                        if i in by_user:
                            values = population.row(when, user=subject_user)
                        elif i in about_case:
                            values = population.row(when, case=subject_case)
                        else:
                            values = population.row(when)
                        digest = chain.entry_hash(prev, dict(zip(chain.FIELDS, values, strict=True)))
                        copy.write_row((*values, prev, digest))
                        prev = digest
                deadline.check("loading filler entries")
    return prev


def vacuum_analyze() -> None:
    """As a settled production table would be: vacuumed, analysed, and the load's WAL
    checkpointed (else the checkpoint after a bulk load writes during the timing)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) audit_auditevent")
        cursor.execute("ANALYZE")
        cursor.execute("CHECKPOINT")


def table_size() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('audit_auditevent')), "
                       "pg_size_pretty(pg_indexes_size('audit_auditevent'))")
        heap, indexes = cursor.fetchone()
    return f"table {heap}, indexes {indexes}"


def check_tail(expected_head: str) -> None:
    """The newest entry's hash is the one the load computed, and recomputing it from
    the stored values gives the same: the filler is a valid continuation of the chain."""
    from audit import chain
    from audit.models import AuditEvent

    row = AuditEvent.objects.order_by("-id").values("prev_hash", "entry_hash", *chain.FIELDS).first()
    if row["entry_hash"] != expected_head or chain.entry_hash(row["prev_hash"], row) != expected_head:
        raise BenchError("the loaded entries do not continue the hash chain as computed")


# --- the searches -----------------------------------------------------------------------

def _is_search(sql: str) -> bool:
    return 'FROM "audit_auditevent"' in sql and 'ORDER BY "audit_auditevent"."occurred_at" DESC' in sql


def search_specs(subject: tuple[int, int], day: datetime.date) -> list[tuple[str, object]]:
    from django.utils import timezone

    from audit.selectors import LogFilter

    since = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    until = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1),
                                                          datetime.time.min))
    return [("by case", LogFilter(case_ids=(subject[1],))),
            ("by user", LogFilter(user_id=subject[0])),
            ("by date", LogFilter(since=since, until=until))]


def matching(spec) -> tuple[int, int | None]:
    """How many entries match, and the id of the newest (what page 1 must start with)."""
    from audit.models import AuditEvent

    entries = AuditEvent.objects.all()
    if spec.user_id is not None:
        entries = entries.filter(actor_id=spec.user_id)
    if spec.case_ids is not None:
        entries = entries.filter(case_id__in=spec.case_ids)
    if spec.since is not None:
        entries = entries.filter(occurred_at__gte=spec.since, occurred_at__lt=spec.until)
    return entries.count(), entries.order_by("-occurred_at", "-id").values_list("id", flat=True).first()


def measure_search(ig_user, name: str, spec, args, deadline: Deadline) -> dict:
    from django.conf import settings
    from django.db import connection

    from audit.selectors import search_log

    count, newest = matching(spec)
    for _ in range(args.warmup):
        search_log(ig_user, spec)
    result = search_log(ig_user, spec)
    shown = len(result["entries"])
    if shown != min(count, settings.IG_PAGE_SIZE) or (newest and result["entries"][0].pk != newest) \
            or result["has_next"] != (count > settings.IG_PAGE_SIZE):
        raise BenchError(f"{name}: search_log gave {shown} entries (has_next {result['has_next']}) "
                         f"for {count} matching")
    deadline.check(f"warming up {name}")
    totals, selects, runs = [], [], []
    search_sql = None
    with gc_paused():
        for i in range(args.runs):
            timer = StatementTimer()
            with connection.execute_wrapper(timer):
                start = time.perf_counter()
                search_log(ig_user, spec)
                totals.append((time.perf_counter() - start) * 1000)
            found = [(sql, params, ms) for sql, params, ms in timer.statements if _is_search(sql)]
            if found:
                selects.append(found[0][2])
                search_sql = found[0][:2]
            runs.append([(sql, ms) for sql, _params, ms in timer.statements])
            if i % 20 == 0:
                deadline.check(f"timing {name}")
    return {"name": name, "spec": spec, "matching": count, "shown": shown,
            "statements": len(runs[-1]) if runs else 0,
            "p50": percentile(totals, 50), "p95": percentile(totals, 95),
            "select_p50": percentile(selects, 50), "select_p95": percentile(selects, 95),
            "sql": search_sql, "breakdown": breakdown(runs, totals)}


def breakdown(runs: list[list[tuple[str, float]]], totals: list[float]) -> str:
    """Each statement's median (ms), and the median of what is outside them (Python and
    COMMIT)."""
    if not runs or any(len(r) != len(runs[0]) for r in runs):
        return "(statements differ between calls)"
    parts = [f"{_label(sql)} {percentile([r[i][1] for r in runs], 50):.2f}"
             for i, (sql, _ms) in enumerate(runs[0])]
    outside = [total - sum(ms for _sql, ms in r) for r, total in zip(runs, totals, strict=True)]
    return ", ".join(parts) + f"; outside them (Python, COMMIT) {percentile(outside, 50):.2f}"


# --- the saves ----------------------------------------------------------------------------

def _no_record(**kwargs):
    return None


def _no_history(*args, **kwargs):
    return None


@contextlib.contextmanager
def audit_and_history_off():
    """OFF, in this process only: the two audit entries a finalised note writes and its
    history version are not written (nor anything else simple-history would write)."""
    from django.test.utils import override_settings

    from casenotes.actions import notes

    real = {name: getattr(notes, name) for name in ("record", "record_many") if hasattr(notes, name)}
    notes.record = _no_record
    if "record_many" in real:  # should the actions batch their entries
        notes.record_many = _no_history
    notes.NOTE_HISTORY.create_historical_record = _no_history  # shadows the bound method
    try:
        with override_settings(SIMPLE_HISTORY_ENABLED=False):
            yield
    finally:
        for name, function in real.items():
            setattr(notes, name, function)
        del notes.NOTE_HISTORY.create_historical_record


class Saver:
    def __init__(self):
        from django.contrib.auth import get_user_model

        from casenotes.models import Case

        self.user = get_user_model().objects.get(username=WRITER)
        self.case = Case.objects.get(reference=CASE_REFERENCE)
        self.n = 0

    def save(self):
        from django.utils import timezone

        from casenotes.actions import do_create_note
        from casenotes.models import CaseNote

        self.n += 1
        return do_create_note(
            acting_user=self.user, case=self.case, note_type=CaseNote.NoteType.PHONE_CALL,
            occurred_at=timezone.now() - datetime.timedelta(minutes=1),
            body=f"Benchmark note {self.n}: spoke to mother by phone; plan reviewed, next visit "
                 "booked.", sensitivity=CaseNote.Sensitivity.STANDARD, finalise=True)


def _counts() -> tuple[int, int, int]:
    from audit.models import AuditEvent
    from casenotes.models import CaseNote

    return (CaseNote.objects.count(), CaseNote.history.count(), AuditEvent.objects.count())


def save_phase(saver: Saver, mode: str, seconds: float) -> dict:
    context = audit_and_history_off() if mode == "off" else contextlib.nullcontext()
    with context:
        for _ in range(3):  # warm-up
            saver.save()
        before = _counts()
        saves = 0
        with gc_paused():
            start = time.perf_counter()
            while True:
                saver.save()
                saves += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
        after = _counts()
    notes, history, audit = (a - b for a, b in zip(after, before, strict=True))
    if notes != saves:
        raise BenchError(f"{mode}: {saves} saves made {notes} notes")
    expected = (saves, 2 * saves) if mode == "on" else (0, 0)
    if (history, audit) != expected:
        raise BenchError(f"{mode}: {saves} saves wrote {history} history versions and {audit} audit "
                         f"entries, not {expected[0]} and {expected[1]}")
    return {"mode": mode, "saves": saves, "seconds": elapsed, "rate": saves / elapsed,
            "history": history, "audit": audit}


def _label(sql: str) -> str:
    """What a statement reads or writes: the verb and the main table (else its start)."""
    return statement_label(sql) or sql.split("(")[0][:32]


def save_breakdown(saver: Saver, count: int) -> dict:
    """Per save, ON and OFF alternating save by save: wall time, statements and the time
    spent waiting on them (medians over `count` saves each), each statement's median."""
    from django.db import connection

    samples = {mode: {"walls": [], "waits": [], "runs": []} for mode in ("on", "off")}
    with gc_paused():
        for i in range(count):
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                context = audit_and_history_off() if mode == "off" else contextlib.nullcontext()
                timer = StatementTimer()
                with context, connection.execute_wrapper(timer):
                    start = time.perf_counter()
                    saver.save()
                    wall = (time.perf_counter() - start) * 1000
                samples[mode]["walls"].append(wall)
                samples[mode]["waits"].append(sum(ms for _s, _p, ms in timer.statements))
                samples[mode]["runs"].append(timer.statements)
    out = {}
    for mode, got in samples.items():
        runs = got["runs"]
        per_statement = []
        if runs and all(len(r) == len(runs[0]) for r in runs):
            for index, (sql, _params, _ms) in enumerate(runs[-1]):
                per_statement.append((_label(sql), percentile([r[index][2] for r in runs], 50)))
        out[mode] = {"wall": percentile(got["walls"], 50), "db": percentile(got["waits"], 50),
                     "statements": len(runs[-1]), "per_statement": per_statement}
    return out


def profile_saves(saver: Saver, mode: str, count: int) -> str:
    context = audit_and_history_off() if mode == "off" else contextlib.nullcontext()
    profiler = cProfile.Profile()
    with context:
        profiler.enable()
        for _ in range(count):
            saver.save()
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
    stats.print_stats(r"notes\.py|actions\.py|chain\.py|simple_history|base\.py:\d+\(full_clean\)|"
                      r"execute|_chain|record|head_hash|lock_for_append|commit", 25)
    return out.getvalue()


# --- the report -------------------------------------------------------------------------

def report_searches(small: list[dict], large: list[dict], extra: list[dict], sizes: tuple[int, int],
                    show_explain: bool) -> bool:
    s_label, l_label = f"{sizes[0]:,}", f"{sizes[1]:,}"
    print("IG access-log searches: search_log, page 1 (up to 50 entries, newest first, "
          "as the IG page asks), as the IG officer; milliseconds per call, and the SELECT's own")
    print()
    columns = ("search", f"matching @{s_label}", f"p50 @{s_label}", f"p95 @{s_label}",
               f"matching @{l_label}", f"p50 @{l_label}", f"p95 @{l_label}", "ratio p95",
               f"SELECT p50/p95 @{s_label}", f"SELECT p50/p95 @{l_label}",
               f"ratio <= {TARGET_SEARCH_RATIO:g}")
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "|".join("---:" for _ in columns[1:]) + "|")
    passed = True
    for a, b in zip(small, large, strict=True):
        ratio = b["p95"] / a["p95"]
        ok = ratio <= TARGET_SEARCH_RATIO
        passed &= ok
        b["ratio"] = ratio
        print(f"| {a['name']} | {a['matching']:,} | {a['p50']:.2f} | {a['p95']:.2f} | {b['matching']:,} | "
              f"{b['p50']:.2f} | {b['p95']:.2f} | {ratio:.2f} | {a['select_p50']:.2f} / "
              f"{a['select_p95']:.2f} | {b['select_p50']:.2f} / {b['select_p95']:.2f} | "
              f"{'PASS' if ok else 'FAIL'} |")
    for row in extra:
        print(f"  for comparison at {l_label}, {row['name']}: {row['matching']:,} matching, "
              f"p50 {row['p50']:.2f} p95 {row['p95']:.2f} ms (SELECT {row['select_p50']:.2f} / "
              f"{row['select_p95']:.2f})")
    print("  where a call's time goes (median ms of each statement, in order):")
    for label, rows in ((s_label, small), (l_label, large)):
        for row in rows:
            print(f"    {row['name']} @{label}: {row['breakdown']}")
    print(f"  statements per search_log call: {large[0]['statements']} (the SELECT; the IG officer's "
          "membership for the entry's labels; the append lock, the head hash and the INSERT of "
          "its AUDIT_SEARCHED entry)")
    print()
    print(f"target: p95 @{l_label} / p95 @{s_label} <= {TARGET_SEARCH_RATIO:g} for each search: "
          f"{'PASS' if passed else 'FAIL'}")
    for row in large:
        if row["sql"] and (show_explain or row["ratio"] > TARGET_SEARCH_RATIO):
            print(f"\nEXPLAIN ANALYZE of the search {row['name']} at {l_label} ({row['spec'].describe()}):")
            print(explain(*row["sql"]))
    return passed


def report_saves(phases: list[dict], breakdown: dict, profiles: dict) -> bool:
    print("Note saves: do_create_note, finalised standard note, single thread, "
          f"{len(phases) // 2} rounds of ON and OFF alternating")
    print()
    print("| round | ON saves | ON s | ON saves/s | OFF saves | OFF s | OFF saves/s | ON/OFF |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    rounds = {}
    for phase in phases:
        rounds.setdefault(phase["round"], {})[phase["mode"]] = phase
    for number, pair in sorted(rounds.items()):
        on, off = pair["on"], pair["off"]
        print(f"| {number} | {on['saves']} | {on['seconds']:.1f} | {on['rate']:.1f} | {off['saves']} | "
              f"{off['seconds']:.1f} | {off['rate']:.1f} | {on['rate'] / off['rate']:.2f} |")
    total = {mode: (sum(p["saves"] for p in phases if p["mode"] == mode),
                    sum(p["seconds"] for p in phases if p["mode"] == mode)) for mode in ("on", "off")}
    rate_on, rate_off = (total[m][0] / total[m][1] for m in ("on", "off"))
    ratio = rate_on / rate_off
    print(f"| all | {total['on'][0]} | {total['on'][1]:.1f} | {rate_on:.1f} | {total['off'][0]} | "
          f"{total['off'][1]:.1f} | {rate_off:.1f} | **{ratio:.2f}** |")
    print()
    for mode in ("on", "off"):
        b = breakdown[mode]
        print(f"  {mode.upper():>3}: {b['wall']:.2f} ms a save (median of 50, ON and OFF alternating), "
              f"{b['statements']} SQL statements, {b['db']:.2f} ms of it in them (the rest: Python, "
              "and the COMMIT)")
        print("       " + ", ".join(f"{label} {ms:.2f}" for label, ms in b["per_statement"]))
    on_rows = sum(p["audit"] for p in phases if p["mode"] == "on")
    on_hist = sum(p["history"] for p in phases if p["mode"] == "on")
    print(f"  checked: the ON phases wrote {on_hist} history versions and {on_rows} audit entries "
          f"(one and two a save); the OFF phases wrote none")
    print("  OFF removes, in this process only: the audit entries of do_create_note "
          "(NOTE_CREATED and NOTE_FINALISED, in one audit.actions.record_many call: the advisory "
          "append lock, the head-hash SELECT, SHA-256 and one INSERT), and the note's history "
          "version (NOTE_HISTORY.create_historical_record: the historical row's INSERT; a new note "
          "with no links is not read back), with SIMPLE_HISTORY_ENABLED off besides. "
          "Everything else (the case lock, the policy's queries, validation, the note INSERT, the case "
          "event, the commit) is in both. Live notices are in neither (casenotes.events.publish is a "
          "no-op in both; in-memory channel layer).")
    ok = ratio >= TARGET_SAVE_RATIO
    print()
    print(f"target: saves/s ON / saves/s OFF >= {TARGET_SAVE_RATIO:g}: {'PASS' if ok else 'FAIL'} "
          f"({ratio:.2f})")
    for mode, text in profiles.items():
        print(f"\nProfile of saves with history and audit {mode.upper()} (cumulative, this process):")
        print(text)
    return ok


# --- the run ----------------------------------------------------------------------------

def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--small", type=int, default=10_000, help="entries for the first measurement (10000)")
    parser.add_argument("--large", type=int, default=1_000_000,
                        help="entries for the second measurement (1000000)")
    parser.add_argument("--users", type=int, default=500, help="filler users (500)")
    parser.add_argument("--cases", type=int, default=20_000, help="filler case ids (20000)")
    parser.add_argument("--subject-entries", type=int, default=300,
                        help="entries by the searched user and about the searched case (300)")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per search and size (200)")
    parser.add_argument("--warmup", type=int, default=20, help="calls per search discarded first (20)")
    parser.add_argument("--save-seconds", type=float, default=6.0,
                        help="seconds of saving per phase (6)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of ON and OFF phases (5)")
    add_pg_admin_url(parser)
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of each search at the large size (always on FAIL)")
    parser.add_argument("--profile", action="store_true",
                        help="print a profile of the saves ON and OFF (always on FAIL)")
    parser.add_argument("--verify-chain", action="store_true",
                        help="walk the whole hash chain at the end too (about a minute at 1M)")
    parser.add_argument("--seed", type=int, default=2025, help="random seed for the filler (2025)")
    parser.add_argument("--budget", type=float, default=900, help="seconds the whole run may take (900)")
    args = parser.parse_args()
    if not (1_000 <= args.small < args.large <= 5_000_000):
        parser.error("--small, --large: 1000 <= small < large <= 5000000")
    if not (1 <= args.users <= 100_000 and 10 <= args.cases <= 1_000_000):
        parser.error("--users: 1..100000; --cases: 10..1000000")
    if not (51 <= args.subject_entries <= 10_000 and 4 * args.subject_entries < args.small // 2):
        parser.error("--subject-entries: 51..10000, and well under --small")
    if not (1 <= args.runs <= 10_000 and 0 <= args.warmup <= 1_000):
        parser.error("--runs: 1..10000; --warmup: 0..1000")
    if not (0.5 <= args.save_seconds <= 120 and 1 <= args.rounds <= 20):
        parser.error("--save-seconds: 0.5..120; --rounds: 1..20")

    deadline = Deadline(args.budget, error=BenchError)
    on_sigterm(BenchError)
    alarm_after(int(args.budget) + 30, "out of time (the budget's last-resort alarm)", BenchError)
    load_before = starting_load()
    database = open_scratch_postgres(args.pg_admin_url, DB_NAME, BenchError)
    if database is None:
        return 2

    env = bench_env(database.url, "testserver,127.0.0.1,localhost", unset=("REDIS_URL",))
    django_ready = False
    try:
        log(f"database: {database.describe()}")
        database.create()
        started = time.monotonic()
        log("migrating")
        manage(env, "migrate", "--noinput", error=BenchError, deadline=deadline)
        log("seeding the demo data")
        manage({**env, "DEBUG": "1"}, "seed_demo", error=BenchError, deadline=deadline)
        setup_django(env)
        django_ready = True
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db.backends.signals import connection_created
        from django.utils import timezone

        from audit import chain
        from audit.models import AuditEvent
        from casenotes import events

        connection_created.connect(set_statement_timeout)
        events.publish = lambda *notice: None  # live notices out of both save runs (this process)
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        rng = random.Random(args.seed)
        population = Population(rng, args.users, args.cases)
        ig_user = get_user_model().objects.get(username=IG_OFFICER)
        seeded = AuditEvent.objects.count()
        day = timezone.localdate() - datetime.timedelta(days=100)
        while day.weekday() in (0, 5, 6):  # a Tuesday to Friday
            day -= datetime.timedelta(days=1)

        # 1. the searches at the small size
        small_add = args.small - seeded
        log(f"{seeded} entries from the seed; loading {small_add:,} filler entries "
            f"({args.subject_entries} by user {SUBJECT_USERS[0]}, as many about case {SUBJECT_CASES[0]})")
        load_started = time.monotonic()
        head = load_entries(small_add, population, (SUBJECT_USERS[0], SUBJECT_CASES[0]),
                            args.subject_entries, rng, deadline)
        check_tail(head)
        vacuum_analyze()
        verdict = chain.verify()
        if not verdict.ok:
            raise BenchError(f"the hash chain does not verify at {verdict.bad_id}: {verdict.problem}")
        small_size = AuditEvent.objects.count()
        small_disk = table_size()
        log(f"{small_size:,} entries ({small_disk}) in {time.monotonic() - load_started:.1f} s; "
            f"chain verified ({verdict.count:,} entries)")
        small = []
        for name, spec in search_specs((SUBJECT_USERS[0], SUBJECT_CASES[0]), day):
            log(f"timing {name} at {small_size:,} ({args.warmup} warm-up + {args.runs}): {spec.describe()}")
            small.append(measure_search(ig_user, name, spec, args, deadline))

        # 2. the searches at the large size
        large_add = args.large - AuditEvent.objects.count()
        log(f"loading {large_add:,} filler entries ({args.subject_entries} by user {SUBJECT_USERS[1]}, "
            f"as many about case {SUBJECT_CASES[1]})")
        load_started = time.monotonic()
        head = load_entries(large_add, population, (SUBJECT_USERS[1], SUBJECT_CASES[1]),
                            args.subject_entries, rng, deadline)
        load_seconds = time.monotonic() - load_started
        check_tail(head)
        log(f"loaded in {load_seconds:.1f} s; VACUUM ANALYZE")
        vacuum_analyze()
        large_size = AuditEvent.objects.count()
        large_disk = table_size()
        log(f"{large_size:,} entries ({large_disk}); setup took {time.monotonic() - started:.0f} s")
        large = []
        for name, spec in search_specs((SUBJECT_USERS[1], SUBJECT_CASES[1]), day):
            log(f"timing {name} at {large_size:,}: {spec.describe()}")
            large.append(measure_search(ig_user, name, spec, args, deadline))
        extra = []
        for name, spec in search_specs((SUBJECT_USERS[0], SUBJECT_CASES[0]), day)[:2]:
            log(f"timing {name} at {large_size:,} for the first subject: {spec.describe()}")
            extra.append(measure_search(ig_user, f"{name} (the pair planted in the first "
                                                   f"{args.small:,})", spec, args, deadline))

        # 3. the saves, ON and OFF alternating, on the large log
        saver = Saver()
        phases = []
        for number in range(1, args.rounds + 1):
            deadline.check("saving notes")
            for mode in (("on", "off") if number % 2 else ("off", "on")):
                log(f"round {number}: saving for {args.save_seconds:g} s with history and audit "
                    f"{mode.upper()}")
                phase = save_phase(saver, mode, args.save_seconds)
                phase["round"] = number
                phases.append(phase)
                log(f"  {phase['saves']} saves, {phase['rate']:.1f}/s")
        breakdown = save_breakdown(saver, 50)
        rate = {m: sum(p["saves"] for p in phases if p["mode"] == m)
                / sum(p["seconds"] for p in phases if p["mode"] == m) for m in ("on", "off")}
        profiles = {}
        if args.profile or rate["on"] / rate["off"] < TARGET_SAVE_RATIO:
            profiles = {mode: profile_saves(saver, mode, 200) for mode in ("on", "off")}

        verified = None
        if args.verify_chain:
            log("walking the whole hash chain")
            deadline.check("before verifying the chain")
            verified = chain.verify()

        print()
        print(f"Audit log benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
        print(describe_machine(load_before))
        print(f"database: {database.describe()}; channel layer {layer}")
        print(f"data: the demo seed ({seeded} entries), then filler to {small_size:,} entries "
              f"({small_disk}) and to {large_size:,} ({large_disk}; {large_add:,} loaded in "
              f"{load_seconds:.0f} s): {args.users} users, {args.cases:,} case ids, {SPAN_DAYS} days; "
              "filler hash columns computed (a valid chain on from the seed's entries)")
        print(f"searched: user {SUBJECT_USERS[0]} / case {SUBJECT_CASES[0]} at {args.small:,}, user "
              f"{SUBJECT_USERS[1]} / case {SUBJECT_CASES[1]} at {args.large:,} ({args.subject_entries} "
              f"entries each, over the two years); the day {day:%a %d %b %Y} (Europe/London); "
              f"{args.warmup} warm-up + {args.runs} timed calls each")
        print()
        passed = report_searches(small, large, extra, (args.small, args.large), args.explain)
        print()
        passed &= report_saves(phases, breakdown, profiles)
        if verified is not None:
            print(f"\nhash chain: {'verified' if verified.ok else 'BROKEN'}, {verified.count:,} entries"
                  + ("" if verified.ok else f", at {verified.bad_id}: {verified.problem}"))
            passed &= verified.ok
        print(f"\noverall: {'PASS' if passed else 'FAIL'}")
        return 0 if passed else 1
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        if django_ready:
            from django.db import connections

            connections.close_all()
        drop_at_end(database, f"removed the scratch database {DB_NAME}",
                    f"could not remove the scratch database {DB_NAME}")


if __name__ == "__main__":
    sys.exit(main())
