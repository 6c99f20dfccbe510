"""Fixtures for the whole suite: the world built through the actions, and the table
flush that transactional tests need despite the audit table's append-only triggers."""

import pytest
from django.db import connections, transaction

from audit import db as audit_db
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


@pytest.fixture
def world(db):
    """The whole organisation, a case allocated to the FS team and one to the locality
    team (see tests/factories.py)."""
    return build_world()


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
