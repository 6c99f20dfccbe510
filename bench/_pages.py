"""What the page benchmarks (case_page.py, caseload_search.py) share: the scratch
database with Django set up on it, a bulk load with COPY, the database's JIT setting,
and timing one page with its statements."""

import contextlib
import re
import signal
import time
from dataclasses import dataclass

from _common import (
    BenchError,
    Deadline,
    StatementTimer,
    alarm_after,
    bench_env,
    drop_at_end,
    log,
    manage,
    on_sigterm,
    open_scratch_postgres,
    percentile,
    set_statement_timeout,
    setup_django,
    starting_load,
    statement_label,
)


class Interrupted(BaseException):
    """SIGTERM or the last-resort alarm: a BaseException, so that a request under way
    is not turned into a logged server error on its way out (exit status 2)."""


@dataclass
class Scratch:
    """What `scratch_django` made: the database, the run's deadline, the load average
    before it began, and when set-up began (time.monotonic)."""

    database: object
    deadline: Deadline
    load_before: float
    started: float


@contextlib.contextmanager
def scratch_django(args, db_name: str, hint: str):
    """The run's deadline (`args.budget`, with `hint` on how to fit it) and last-resort
    alarm; a scratch PostgreSQL database (`args.pg_admin_url`), migrated, with Django set
    up on it (each statement time-limited, and JIT off with `args.no_jit`). On leaving,
    however the run ended: the alarm off, Django's connections closed, the database
    dropped. Raises BenchError when PostgreSQL cannot be used (stderr says why)."""
    deadline = Deadline(args.budget, hint, BenchError)
    on_sigterm(Interrupted)
    alarm_after(int(args.budget) + 30, "out of time (the budget's last-resort alarm)", Interrupted)
    load_before = starting_load()
    database = open_scratch_postgres(args.pg_admin_url, db_name, BenchError)
    if database is None:
        raise BenchError(f"cannot run without the scratch database {db_name}")
    env = bench_env(database.url, "testserver,127.0.0.1,localhost", unset=("REDIS_URL",))
    django_ready = False
    try:
        log(f"database: {database.describe()}")
        database.create()
        log("migrating")
        started = time.monotonic()
        manage(env, "migrate", "--noinput", error=BenchError, deadline=deadline)
        setup_django(env)
        django_ready = True
        from django.db.backends.signals import connection_created

        connection_created.connect(set_statement_timeout)
        if args.no_jit:
            connection_created.connect(jit_off)
        yield Scratch(database, deadline, load_before, started)
    finally:
        signal.alarm(0)
        if django_ready:
            from django.db import connections

            connections.close_all()
        drop_at_end(database, f"removed the scratch database {db_name}",
                    f"could not remove the scratch database {db_name}")


def timing_line(args, setup_seconds: float) -> str:
    """The report's line on how each page was timed."""
    return (f"per page: {args.warmup} warm-up requests discarded, up to {args.requests} timed "
            f"(at most {args.page_seconds:g} s a page), in-process "
            f"through django.test.Client (setup {setup_seconds:.0f} s)")


def jit_off(sender, connection, **kwargs):
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")


def jit_setting() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('jit_above_cost')")
        jit, above = cursor.fetchone()
    return f"jit {jit} (jit_above_cost {above})"


def next_id(cursor, model) -> int:
    cursor.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{model._meta.db_table}"')
    return cursor.fetchone()[0]


def copy_rows(cursor, model, rows) -> int:
    """COPY rows (dicts by attribute name, e.g. case_id) into `model`'s table. Every
    concrete field is written; one a row leaves out gets the model's default, as the ORM
    would write it, so a field added later does not break the load."""
    fields = model._meta.concrete_fields
    defaults = {f.attname: f.get_default() for f in fields}
    columns = ", ".join(f'"{f.column}"' for f in fields)
    count = 0
    with cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[f.attname] if f.attname in row else defaults[f.attname]
                            for f in fields])
            count += 1
    return count


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def page_statement_label(sql: str) -> str:
    """What a statement reads or writes, for the breakdown: the verb and the main table
    (for a count, COUNT and the table counted)."""
    label = statement_label(sql)
    if label and label.split()[-1].startswith("__"):
        counted = re.search(r'\bFROM\s+"(\w+)"', sql)
        if counted:
            return f"COUNT {counted[1]}"
    return label or sql[:40]


def measure_page(client, name: str, url: str, args, deadline: Deadline, check) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Bounded: a page gets at most --page-seconds for its warm-up and timed requests
    # together (a slow page is reported from the requests that fitted, and says so).
    page_seconds = min(args.page_seconds, max(1.0, deadline.left() - 30))
    page_end = time.monotonic() + page_seconds
    warm_end = time.monotonic() + page_seconds / 4
    response = client.get(url)
    if response.status_code != 200:
        raise BenchError(f"{name}: {url} answered {response.status_code}")
    check(response.content.decode())
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    # Statements, not counting BEGIN and COMMIT (Django lists those too): the page's
    # audit entry is written in a transaction of its own.
    statements = [q["sql"] for q in captured.captured_queries]
    queries = sum(1 for sql in statements if sql not in ("BEGIN", "COMMIT", "ROLLBACK"))
    transactions = statements.count("COMMIT")

    # Where the time goes: each statement's median over a few requests (these count as
    # warm-up too).
    runs = []
    for _ in range(min(5, max(1, args.warmup))):
        timer = StatementTimer()
        with connection.execute_wrapper(timer):
            client.get(url)
        # Not the page's: a new connection's own settings (CONN_MAX_AGE ends a connection
        # now and then, and the next request opens another).
        runs.append([s for s in timer.statements if not s[0].lstrip().upper().startswith("SET ")])
    per_statement = []
    if all(len(r) == len(runs[0]) for r in runs):
        for index, (sql, params, _ms) in enumerate(runs[-1]):
            per_statement.append((page_statement_label(sql),
                                  percentile([r[index][2] for r in runs], 50), sql, params))
    sql_ms = percentile([sum(ms for _sql, _p, ms in r) for r in runs], 50)
    for _ in range(max(0, args.warmup - len(runs) - 2)):
        if time.monotonic() > warm_end:
            break
        client.get(url)
    deadline.check(f"warming up {name}")

    samples = []
    for i in range(args.requests):
        if time.monotonic() > page_end:
            break
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise BenchError(f"{name}: request {i} answered {response.status_code}")
        if i % 20 == 0:
            deadline.check(f"timing {name}")
    if not samples:
        raise BenchError(f"{name}: no request fitted in --page-seconds {args.page_seconds:g}")
    slowest = max(per_statement, key=lambda s: s[1]) if per_statement else None
    return {"name": name, "url": url, "samples": samples, "queries": queries,
            "transactions": transactions, "timed": len(samples),
            "p50": percentile(samples, 50), "p95": percentile(samples, 95), "max": max(samples),
            "statements": per_statement, "slowest": slowest, "sql_ms": sql_ms}

