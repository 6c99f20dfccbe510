"""Project-wide pytest rules, loaded for every test run from the repository root.

Strict skips
    With WORKSPACE_STRICT_SKIPS=1 in the environment (CI sets it), a skipped test is
    reported as a failure carrying its skip reason. A test that needs PostgreSQL, Redis
    or Chromium and quietly skips would otherwise let CI pass without ever running it.
    Expected failures (xfail) are left alone: they ran.

Services
    Mark a test that only means something on PostgreSQL or Redis with
    `@pytest.mark.requires_postgres` or `@pytest.mark.requires_redis`. Unless
    DATABASE_URL names a PostgreSQL database (or REDIS_URL a Redis server) such a test
    is skipped, with a reason that says what to set. Under strict skips it is instead
    *deselected*, and the run's summary says how many and why: CI runs the suite once on
    the embedded defaults and once on PostgreSQL + Redis, and these tests run (and must
    pass) in the second pass. Use the markers rather than `pytest.skip()` on
    `connection.vendor`, which strict skips turn into a failure of the first pass.
    The `postgres_url` and `redis_url` fixtures skip the same way for a test that needs
    the address itself.
"""

import os

import pytest

STRICT_SKIPS_ENV = "WORKSPACE_STRICT_SKIPS"

POSTGRES_REASON = (
    "needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:5432/NAME "
    "(the suite ran on the embedded SQLite database)"
)
REDIS_REASON = (
    "needs Redis: set REDIS_URL=redis://HOST:6379/0 "
    "(the suite ran on the in-memory channel layer)"
)


def strict_skips() -> bool:
    return os.environ.get(STRICT_SKIPS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def postgres_configured() -> bool:
    url = os.environ.get("DATABASE_URL", "")
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))


def redis_configured() -> bool:
    return os.environ.get("REDIS_URL", "").startswith(("redis://", "rediss://", "unix://"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires_postgres: skip unless DATABASE_URL names a PostgreSQL database"
    )
    config.addinivalue_line("markers", "requires_redis: skip unless REDIS_URL names a Redis server")


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = "PostgreSQL (DATABASE_URL)" if postgres_configured() else "SQLite (embedded)"
    layer = "Redis (REDIS_URL)" if redis_configured() else "in-memory"
    strict = "on: a skip fails" if strict_skips() else "off"
    return [f"workspace: database {database}; channel layer {layer}; strict skips {strict}"]


_deselected_for_services = pytest.StashKey[list[str]]()


def _missing_services(item: pytest.Item) -> list[str]:
    reasons = []
    if item.get_closest_marker("requires_postgres") and not postgres_configured():
        reasons.append(POSTGRES_REASON)
    if item.get_closest_marker("requires_redis") and not redis_configured():
        reasons.append(REDIS_REASON)
    return reasons


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, deselected = [], []
    for item in items:
        reasons = _missing_services(item)
        if not reasons:
            kept.append(item)
        elif strict_skips():
            deselected.append(item)
        else:
            item.add_marker(pytest.mark.skip(reason="; ".join(reasons)))
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
        config.stash[_deselected_for_services] = [item.nodeid for item in deselected]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    nodeids = config.stash.get(_deselected_for_services, [])
    if nodeids:
        terminalreporter.write_sep(
            "-", f"{len(nodeids)} deselected: they need PostgreSQL or Redis, which this run "
            "does not have (set DATABASE_URL / REDIS_URL; CI's second pass does)"
        )
        for nodeid in nodeids:
            terminalreporter.write_line(f"  {nodeid}")


@pytest.fixture
def postgres_url() -> str:
    if not postgres_configured():
        pytest.skip(POSTGRES_REASON)
    return os.environ["DATABASE_URL"]


@pytest.fixture
def redis_url() -> str:
    if not redis_configured():
        pytest.skip(REDIS_REASON)
    return os.environ["REDIS_URL"]


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return str(longrepr)


def _strict_failure_text(report) -> str:
    return f"{_skip_reason(report)} [skipped; a skip fails when {STRICT_SKIPS_ENV}=1]"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and strict_skips():
        report.longrepr = _strict_failure_text(report)
        report.outcome = "failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A whole module skipped at import (pytest.skip(allow_module_level=True),
    # pytest.importorskip) is a collection report, not a test report.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and strict_skips():
        report.longrepr = _strict_failure_text(report)
        report.outcome = "failed"
