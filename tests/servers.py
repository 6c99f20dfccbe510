"""Real ASGI server processes for tests that need WebSockets end to end (the browser
tests, the two-process scale-out test): Daphne serving workspace.asgi against the
test database the current test is using."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def current_database_url() -> str:
    """A DATABASE_URL naming the database this test runs on (the test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def daphne_server(*, port: int | None = None, env: dict | None = None, log_path: Path | None = None):
    """Start Daphne on 127.0.0.1:`port`; yield its base URL; stop it afterwards.

    It shares the test's database (the test must be transactional so its data is
    committed) and, when REDIS_URL is set, the Redis channel layer."""
    port = port or free_port()
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workspace.settings.test",
        "DATABASE_URL": current_database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    child_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = log_path or ROOT / "var" / f"daphne-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "workspace.serve", "-b", "127.0.0.1", "-p", str(port),
         "workspace.asgi:application"],
        cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited early: {log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
