"""Fixtures for the whole suite: the world built through the actions, and the table
flush that transactional tests need despite the audit table's append-only triggers."""

import pytest
from django.db import connections, transaction

from audit import db as audit_db
from tests.factories import build_world


def _wrap_sql_flush(original):
    """`ops.sql_flush` with the audit triggers dropped first and re-created last, so
    Django's flush between transactional tests can empty the audit table and the
    triggers are back in force before the next test starts."""

    def sql_flush(self, style, tables, *args, **kwargs):
        statements = list(original(self, style, tables, *args, **kwargs))
        if not statements or audit_db.TABLE not in tables:
            return statements
        vendor = self.connection.vendor
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
