"""Fixtures for the whole suite: the world built through the actions and the demo,
each shared by a module's tests that roll back (`Shared`), and the table flush that
transactional tests need despite the audit table's append-only triggers."""

import copy

import pytest
from django.db import connections, transaction
from pytest_django.plugin import validate_django_db

from audit import db as audit_db
from tests.demo import demo, seed_demo  # noqa: F401 (demo: a fixture for the whole suite)
from tests.factories import build_world

# Filled by migrations' post_migrate handlers and the same before and after every test.
# Django's flush empties them and post_migrate refills them (a few hundred INSERTs) after
# every transactional test; keeping them changes nothing a test can see.
KEPT_BY_FLUSH = frozenset({"django_content_type", "auth_permission"})


def _wrap_sql_flush(original):
    """`ops.sql_flush` for the suite's flush between transactional tests:

    - the audit triggers dropped first and re-created last, so the flush can empty the
      audit table and the triggers are back in force before the next test starts;
    - content types and permissions kept (`KEPT_BY_FLUSH`);
    - on PostgreSQL, `DELETE FROM` each table instead of one `TRUNCATE` of them all: a
      test leaves a few rows in each, and TRUNCATE's new files for a hundred tables
      cost about a third of a second a test. Django's foreign keys there are deferred,
      so the order of the deletes does not matter. A flush that resets sequences keeps
      Django's TRUNCATE ... RESTART IDENTITY.
    """

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        tables = [table for table in tables if table not in KEPT_BY_FLUSH]
        vendor = self.connection.vendor
        if vendor == "postgresql" and not reset_sequences:
            statements = [
                f"{style.SQL_KEYWORD('DELETE')} {style.SQL_KEYWORD('FROM')} "
                f"{style.SQL_FIELD(self.quote_name(table))};"
                for table in tables
            ]
        else:
            statements = list(original(self, style, tables, reset_sequences=reset_sequences,
                                       allow_cascade=allow_cascade))
        if not statements or audit_db.TABLE not in tables:
            return statements
        return [*audit_db.drop_sql(vendor), *statements, *audit_db.create_sql(vendor)]

    sql_flush.__wrapped__ = original
    sql_flush.lifts_audit_triggers = True
    return sql_flush


@pytest.fixture(scope="session", autouse=True)
def audit_triggers_lifted_for_flush():
    """The audit table refuses DELETE and TRUNCATE (audit.db), and so refuses the flush
    TransactionTestCase / `transactional_db` / `live_server` run after each test.

    Every connection's operations class is wrapped (the class, not the instance, so a
    connection opened later or in another thread gets it too); the wrap is undone at
    the end of the session.
    """
    wrapped = {}
    for alias in connections:
        ops_class = type(connections[alias].ops)
        if ops_class in wrapped or getattr(ops_class.sql_flush, "lifts_audit_triggers", False):
            continue
        wrapped[ops_class] = ops_class.__dict__.get("sql_flush")
        ops_class.sql_flush = _wrap_sql_flush(ops_class.sql_flush)
    yield
    for ops_class, original in wrapped.items():
        if original is None:
            del ops_class.sql_flush
        else:
            ops_class.sql_flush = original


def _transactional(item) -> bool:
    """True for a test that commits for real (`transactional_db`, `live_server`, or the
    django_db marker's `transaction=True`), so cannot run inside a shared transaction.
    The same rule by which pytest-django runs these after the others."""
    marker = item.get_closest_marker("django_db")
    if marker is not None:
        transaction_, reset_sequences, *_ = validate_django_db(marker)
        if transaction_ or reset_sequences:
            return True
    return not {"transactional_db", "live_server", "django_db_reset_sequences"}.isdisjoint(
        item.fixturenames)


#: The fixtures whose set-up a module's tests share (`Shared`): each one's module-scoped
#: part, and what it sets up.
SHARED = {"_module_world_shared": "world", "_module_demo_shared": "demo"}


def _sharing(item) -> str | None:
    """What `item` shares with the other tests of its module ("world" or "demo"): None
    for a test that commits for real, or asks for neither (or both)."""
    kinds = [kind for fixture, kind in SHARED.items() if fixture in item.fixturenames]
    return kinds[0] if len(kinds) == 1 and not _transactional(item) else None


class Shared:
    """One set-up (the tests' `world`, or the `demo`) for a module's tests that ask for
    it and roll back (most tests), built once in a transaction held open while they run
    and rolled back after the last of them. Each test runs in a savepoint inside it (the
    `db` fixture); a test's `world` is its own deep copy of the Python objects. A world
    is a few hundred statements through the actions, the demo a few thousand: built once
    per module instead of once per test, the suite runs minutes quicker.

    Any other test runs outside it, so that it finds only what it made itself:
    `pytest_collection_modifyitems` runs each module's tests sharing a world, then those
    sharing the demo, before its others (pytest-django runs the tests that commit for
    real after all of these), and `pytest_runtest_setup` rolls the set-up back before
    any test that does not share it. A test of the module after that point that does ask
    for it builds its own (if the order was changed, by `--ff` say, or a test before it
    closed the connection, which fails that test: `using`).
    """

    def __init__(self):
        self.kind: str | None = None
        self.value = None
        self.atomic = None
        self.blocker = None

    def open(self, kind: str, blocker, build) -> None:
        self.close()
        self.blocker = blocker
        with blocker.unblock():
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            self.kind = kind
            try:
                self.value = build()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self.atomic is None:
            return
        atomic, self.atomic, self.kind, self.value = self.atomic, None, None, None
        with self.blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)

    def get(self, kind: str):
        """The shared set-up of `kind`, or None when there is none open."""
        return self.value if self.kind == kind else None

    def lost(self) -> bool:
        """True when a test closed the database connection inside the set-up's
        transaction, which took the set-up with it."""
        return self.atomic is not None and connections["default"].closed_in_transaction

    def using(self, kind: str, value):
        """A fixture's body around one test given `value`: after the test, fail it if it
        closed the connection and so lost the set-up for the module's later tests (they
        build their own). Such a test must commit for real (`transaction=True`)."""
        yield value
        if self.kind == kind and self.lost():
            pytest.fail("this test closed the database connection inside the module's shared "
                        f"{kind} (tests/conftest.py, Shared): mark it django_db(transaction=True)",
                        pytrace=False)


#: What the module now running shares, while its sharing tests run.
_shared = Shared()
#: The test about to be set up (read by the module-scoped fixtures when they are set up).
_item_being_set_up = None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """After pytest-django's order (tests that roll back, then those that commit, then
    those without a database): within each module's run, the tests sharing its world
    first, then those sharing its demo, then the rest."""
    def run(item):  # the module's run the test is in (as pytest-django groups them)
        uses_db = "db" in item.fixturenames or item.get_closest_marker("django_db")
        return item.module, 1 if _transactional(item) else 0 if uses_db else 2

    rank = {kind: place for place, kind in enumerate(SHARED.values())}
    first = {}
    for index, item in enumerate(items):
        first.setdefault(run(item), index)
    items.sort(key=lambda item: (first[run(item)], rank.get(_sharing(item), len(rank))))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    global _item_being_set_up
    _item_being_set_up = item
    if _sharing(item) != _shared.kind or _shared.lost():
        _shared.close()


def _shared_for_module(kind: str, blocker, build):
    """The body of each module-scoped part of SHARED: opened when the module's first
    test sharing `kind` is set up; closed at the end of the module."""
    if _item_being_set_up is not None and _sharing(_item_being_set_up) == kind:
        _shared.open(kind, blocker, build)
    yield _shared
    if _shared.kind == kind:
        _shared.close()


@pytest.fixture(scope="module")
def _module_world_shared(django_db_setup, django_db_blocker):
    yield from _shared_for_module("world", django_db_blocker, build_world)


@pytest.fixture(scope="module")
def _module_demo_shared(django_db_setup, django_db_blocker):
    yield from _shared_for_module("demo", django_db_blocker, seed_demo)


@pytest.fixture
def world(_module_world_shared, db):
    """The whole organisation, a case allocated to the FS team and one to the locality
    team (see tests/factories.py): the module's shared world (`Shared`), copied for this
    test, or a world of its own for a test that commits for real."""
    shared = _module_world_shared.get("world")
    yield from _module_world_shared.using(
        "world", build_world() if shared is None else copy.deepcopy(shared))


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    """One world for a whole module, for large parametrised tables (the policy matrix).

    It is built inside a transaction held open for the module and rolled back after
    its last test; each test still runs in its own savepoint (the `db` fixture), so a
    test's writes vanish after it. Tests must not change the shared Python objects.
    A module using this must not also use `world` (agency and team names are unique).
    """
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build_world()
        except BaseException:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


@pytest.fixture
def case(world):
    return world.case


@pytest.fixture
def social_worker(world):
    return world.social_worker


@pytest.fixture
def team_manager(world):
    return world.team_manager


@pytest.fixture
def bootstrap_admin(world):
    return world.bootstrap_admin
