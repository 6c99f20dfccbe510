"""Transactional tests and the append-only audit table.

Django empties every table after a transactional test (TransactionTestCase,
`transactional_db`, `live_server`). The audit triggers refuse that, so tests/conftest.py
wraps the flush to lift them for the flush alone. These tests prove the flush works
and that the triggers are back in force afterwards.
"""

import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction

from audit import db as audit_db
from audit.actions import Actor, record
from audit.models import AuditAction, AuditEvent


def _write_entry(label: str) -> AuditEvent:
    return record(actor=Actor(user_id=None, label=label), action=AuditAction.LOGIN_FAILED)


def _installed_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [audit_db.TABLE])
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [audit_db.TABLE])
        else:  # pragma: no cover
            raise AssertionError(f"no trigger check for {connection.vendor}")
        return {row[0] for row in cursor.fetchall()}


def _assert_triggers_refuse_changes() -> None:
    event = _write_entry("still-append-only")
    for sql in (f"UPDATE {audit_db.TABLE} SET reason = 'x' WHERE id = %s",
                f"DELETE FROM {audit_db.TABLE} WHERE id = %s"):
        with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
            c.execute(sql, [event.pk])
        assert audit_db.MESSAGE in str(caught.value)
    assert AuditEvent.objects.filter(pk=event.pk, reason="").exists()


def test_flush_statements_lift_the_triggers_first_and_restore_them_last(db):
    statements = connection.ops.sql_flush(no_style(), [audit_db.TABLE, "casenotes_casenote"])
    vendor = connection.vendor
    drop, create = audit_db.drop_sql(vendor), audit_db.create_sql(vendor)
    assert drop and create
    assert statements[:len(drop)] == drop
    assert statements[-len(create):] == create
    assert len(statements) > len(drop) + len(create)  # the flush itself is in between


def test_flush_of_other_tables_leaves_the_triggers_alone(db):
    statements = connection.ops.sql_flush(no_style(), ["casenotes_casenote"])
    assert not set(audit_db.drop_sql(connection.vendor)) & set(statements)


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_writes_an_audit_entry():
    _write_entry("written-in-a-transactional-test")
    assert AuditEvent.objects.filter(actor_label="written-in-a-transactional-test").count() == 1
    # Its teardown flushes the table; without the wrapped flush that would fail here.


@pytest.mark.django_db(transaction=True)
def test_the_next_transactional_test_starts_with_an_empty_audit_table():
    # Run after the writer above (file order), this proves its entry was flushed.
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_triggers_are_in_force_in_a_transactional_test_after_a_flush():
    expected = {"sqlite": {"audit_no_update", "audit_no_delete"},
                "postgresql": {"audit_no_update_delete", "audit_no_truncate"}}[connection.vendor]
    assert _installed_triggers() == expected
    _assert_triggers_refuse_changes()

    # A flush inside this test (as TransactionTestCase runs between tests) empties the
    # table and leaves the triggers installed and refusing.
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
    assert AuditEvent.objects.count() == 0
    assert _installed_triggers() == expected
    _assert_triggers_refuse_changes()
