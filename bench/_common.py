"""What the benchmark scripts share: the run's deadline, log and percentiles, the loopback
checks, the scratch PostgreSQL database, the manage.py and Daphne subprocesses, the channel
layer's groups in Redis, signal handling and the machine's description.

Each script imports what it uses with `from _common import ...` (a script's own folder is
on sys.path when it runs). Importing this module puts the repository root on sys.path
too, so that Django and the project's apps import in the script's process.
"""

import argparse
import contextlib
import gc
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: The CI's databases: a script that avoids them never creates, drops or uses them.
RESERVED_DATABASES = {"test", "test_test"}
#: The password of every account a script makes (scratch databases only).
PASSWORD = "bench-only-passphrase-not-secret-42"
#: Bounds: a manage.py subprocess (seconds), a PostgreSQL statement (milliseconds).
SUBPROCESS_WAIT = 300
STATEMENT_TIMEOUT_MS = 60_000


# --- errors, deadline, log --------------------------------------------------------------

def stop(message: str) -> SystemExit:
    """The exception that ends a run with `bench: message` on stderr (exit status 1)."""
    return SystemExit(f"bench: {message}")


class BenchError(Exception):
    """The benchmark could not run (exit status 2)."""


class Deadline:
    """The whole run's time limit: `check` raises `error` once it has passed, with
    `advice` on what to change."""

    def __init__(self, seconds: float, advice: str = "lower the sizes", error=stop):
        self.end = time.monotonic() + seconds
        self.advice, self.error = advice, error

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise self.error(f"out of time ({what}); raise --budget or {self.advice}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@contextlib.contextmanager
def gc_paused():
    """No garbage collection in this process while a phase is timed: a full collection
    stalls it by tens of milliseconds, which is the benchmark's noise, not what it
    measures. Bounded: each phase is a few seconds (or --duration)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- signals ----------------------------------------------------------------------------

def on_sigterm(error=stop) -> None:
    """SIGTERM raises `error("terminated")`, which runs the clean-up in main()'s finally."""

    def terminated(signum, frame):
        raise error("terminated")

    signal.signal(signal.SIGTERM, terminated)


def alarm_after(seconds: int, message: str, error=stop) -> None:
    """The last resort if a bounded wait is not bounded enough: SIGALRM after `seconds`
    raises `error(message)`, which runs the clean-up in main()'s finally."""

    def out_of_time(signum, frame):
        raise error(message)

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(seconds)


# --- the machine ------------------------------------------------------------------------

def starting_load() -> float:
    """The load average (1 min) at the start, with a warning when it is high."""
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {load:.2f} on {os.cpu_count()} CPUs: other work on this "
            "machine will show in the figures")
    return load


def describe_machine(load_before: float) -> str:
    """The report's `machine:` line."""
    return (f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.machine()}, {cpu_model()}, "
            f"Python {platform.python_version()}, load average {load_before:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --- command line, addresses ------------------------------------------------------------

def make_parser(doc: str) -> argparse.ArgumentParser:
    """The script's parser, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_pg_admin_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg-admin-url", default=os.environ.get(
        "BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL to create the scratch database on (BENCH_PG_ADMIN_URL)")


def parse_interval(text: str, lowest: int, highest: int) -> tuple[float, float]:
    """`MIN-MAX` (or one number) in milliseconds, within lowest..highest, as seconds."""
    low, _, high = text.partition("-")
    low_ms, high_ms = float(low), float(high or low)
    if not lowest <= low_ms <= high_ms <= highest:
        raise argparse.ArgumentTypeError(f"MIN-MAX in milliseconds, {lowest} <= MIN <= MAX <= {highest}")
    return low_ms / 1000, high_ms / 1000


def require_loopback(url: str, what: str, error=stop) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise error(f"{what} must be on loopback (127.0.0.1), not {host!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def end_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- Django in this process and in subprocesses -----------------------------------------

#: What setup_django copies from the subprocesses' environment (or unsets).
SETTINGS_VARIABLES = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "ALLOWED_HOSTS", "DEBUG")


def bench_env(database_url: str, allowed_hosts: str = "127.0.0.1", redis_url: str | None = None,
              unset: tuple[str, ...] = ()) -> dict:
    """The environment of the manage.py and Daphne subprocesses: this process's, with the
    scratch database, the test settings and unbuffered output, and without DEBUG,
    DJANGO_ALLOW_ASYNC_UNSAFE and the names in `unset`."""
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "workspace.settings.test",
           "ALLOWED_HOSTS": allowed_hosts, "PYTHONUNBUFFERED": "1"}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    for name in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", *unset):
        env.pop(name, None)
    return env


def setup_django(env: dict, also: tuple[str, ...] = ()) -> None:
    """Django set up in this process as in the subprocesses: each of SETTINGS_VARIABLES
    and `also` as `env` has it, or unset where `env` has none."""
    for name in (*SETTINGS_VARIABLES, *also):
        if name in env:
            os.environ[name] = env[name]
        else:
            os.environ.pop(name, None)
    import django

    django.setup()


def manage(env: dict, *args: str, error=stop, deadline: Deadline | None = None) -> None:
    """`manage.py args` in a subprocess, bounded by SUBPROCESS_WAIT (and by what is left of
    `deadline`); raises `error` when it fails or does not finish in time."""
    command = f"manage.py {' '.join(args)}"
    seconds = SUBPROCESS_WAIT if deadline is None else max(1, min(SUBPROCESS_WAIT, deadline.left()))
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired as timeout:
        raise error(f"{command} did not finish in time") from timeout
    if result.returncode != 0:
        raise error(f"{command} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")


def set_statement_timeout(sender, connection, **kwargs):
    """A connection_created receiver: this process's statements time out."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")


# --- the scratch database ---------------------------------------------------------------

class ScratchPostgres:
    """A scratch PostgreSQL database `name` on the server of `admin_url` (on loopback):
    created fresh, dropped after. Raises `error` for an address off loopback, or (with
    `avoid_ci`) for the CI's databases; psycopg's error when PostgreSQL does not answer."""

    def __init__(self, admin_url: str, name: str, error=stop, avoid_ci: bool = False):
        require_loopback(admin_url, "PostgreSQL", error)
        if avoid_ci and (name in RESERVED_DATABASES
                         or urlsplit(admin_url).path.strip("/") in RESERVED_DATABASES):
            raise error("the databases test and test_test are the CI's; not used here")
        self.admin_url, self.name = admin_url, name
        self.server_version = self._admin("SHOW server_version")

    @property
    def url(self) -> str:
        return urlsplit(self.admin_url)._replace(path=f"/{self.name}").geturl()

    def describe(self) -> str:
        return f"PostgreSQL {self.server_version}, scratch database {self.name} on 127.0.0.1"

    def _admin(self, sql: str):
        import psycopg

        with psycopg.connect(self.admin_url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            cursor = conn.execute(sql)
            return cursor.fetchone()[0] if cursor.description else None

    def create(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {self.name}")

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def deadlocks(self) -> int:
        """Deadlocks PostgreSQL has detected (and broken, failing one transaction) in the
        scratch database since it was created."""
        return self._admin(f"SELECT deadlocks FROM pg_stat_database WHERE datname = '{self.name}'") or 0


def open_scratch_postgres(admin_url: str, name: str, error=stop, avoid_ci: bool = False,
                          needed: str = "") -> ScratchPostgres | None:
    """ScratchPostgres(...), or None once stderr says why not: a BenchError's message, or
    that PostgreSQL does not answer (followed by `needed`). `error=stop` ends the run."""
    try:
        return ScratchPostgres(admin_url, name, error, avoid_ci)
    except BenchError as problem:
        print(f"bench: {problem}", file=sys.stderr)
    except Exception as problem:
        print(f"bench: PostgreSQL at {admin_url} does not answer ({problem}){needed}", file=sys.stderr)
    return None


def drop_at_end(database, removed: str, not_removed: str = "could not remove the scratch database") -> None:
    """Drop the scratch database in main()'s finally, and log `removed` (or why not)."""
    try:
        database.drop()
        log(removed)
    except Exception as error:
        log(f"{not_removed}: {error}")


# --- SQL statements ---------------------------------------------------------------------

class StatementTimer:
    """Times each statement (connection.execute_wrapper)."""

    def __init__(self):
        self.statements: list[tuple[str, object, float]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, params, (time.perf_counter() - start) * 1000))


def statement_label(sql: str) -> str | None:
    """What a statement reads or writes: the verb and the main table (None when it names
    no table in quotes)."""
    match = re.match(r'\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b.*?(?:FROM\s+)?"(\w+)"', sql, re.S)
    if not match:
        return None
    return f"{match[1].split()[0]} {match[2]}"


def explain(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


# --- the servers ------------------------------------------------------------------------

class Daphne:
    """One Daphne process serving `app` (the product's workspace.asgi unless told) on a
    free loopback port, its output in `log_path`."""

    def __init__(self, env: dict, log_path: Path, app: str = "workspace.asgi:application"):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
             app],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: int = 30, error=stop) -> None:
        """Until the port accepts a connection (at most `seconds`); `error` if it exits first."""
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                raise error(f"daphne exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise error(f"daphne did not start within {seconds} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        end_process(self.process)
        self.log.close()

    def log_lines(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text.splitlines()

    def problems(self, warnings: bool = False) -> list[str]:
        """What went wrong in the server, by the log: each kind of line with its count
        (WARNING lines too with `warnings`)."""
        pattern = r"over capacity|ERROR|Exception|Error:" + ("|WARNING" if warnings else "")
        found = Counter(line.strip() for line in self.log_lines() if re.search(pattern, line))
        return [f"{count} x {line[:160]}" for line, count in found.most_common(10)]


def print_problems(heading: str, problems: list[str]) -> None:
    """The report's last lines: what the servers' logs report, if anything."""
    if problems:
        print(f"\n{heading}")
        for line in problems:
            print("  " + line)


# --- the channel layer's groups in Redis ------------------------------------------------

def redis_answers(url: str) -> bool:
    """Whether Redis answers at `url`; when it does not, says so on stderr."""
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=3).ping()
    except Exception as error:
        print(f"bench: Redis at {url} does not answer ({error}); it is needed", file=sys.stderr)
        return False
    return True


def redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def clear_groups(url: str, patterns: tuple[str, ...]) -> int:
    """Remove the channel layer's groups matching `patterns` from the benchmark's own Redis
    database (the scratch database's ids are the same every run, so a membership left
    behind by an earlier run would receive this run's notices). Returns how many members
    there were. Database 0 is never touched: it may be a development server's."""
    import redis

    if redis_db(url) == 0:
        return 0
    client = redis.Redis.from_url(url, socket_timeout=3)
    members = 0
    for pattern in patterns:
        for key in client.scan_iter(match=pattern, count=500):
            members += client.zcard(key)
            client.delete(key)
    return members
