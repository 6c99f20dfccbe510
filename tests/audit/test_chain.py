"""The audit trail is tamper-evident: a SHA-256 chain over every entry, `audit_verify`
naming the first entry that does not verify, and `audit_head` giving a head that shows
when the newest entries have been removed."""

import contextlib
import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from audit import chain, context
from audit import db as audit_db
from audit.actions import Actor, Pending, record, record_many
from audit.models import AuditAction, AuditEvent


def _entries(count: int) -> list[AuditEvent]:
    return [record(actor=Actor(user_id=7, label="amara.okafor", agency="Children's services",
                               role="Social worker"),
                   action=AuditAction.CASE_VIEWED, object_type="case", object_id=n, case_id=n)
            for n in range(1, count + 1)]


@contextlib.contextmanager
def _triggers_lifted():
    """What someone with the database's owner rights could do: lift the append-only
    triggers, change the table, put them back."""
    with connection.cursor() as cursor:
        for statement in audit_db.drop_sql(connection.vendor):
            cursor.execute(statement)
        try:
            yield cursor
        finally:
            for statement in audit_db.create_sql(connection.vendor):
                cursor.execute(statement)


def _verify(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def test_each_entry_carries_the_hash_of_the_one_before(db):
    first, second, third = _entries(3)
    assert first.prev_hash == chain.GENESIS
    assert second.prev_hash == first.entry_hash and third.prev_hash == second.entry_hash
    assert len({first.entry_hash, second.entry_hash, third.entry_hash}) == 3
    stored = AuditEvent.objects.get(pk=second.pk)
    assert chain.entry_hash(stored.prev_hash, {f: getattr(stored, f) for f in chain.FIELDS}) \
        == stored.entry_hash


def test_a_batch_is_stored_in_its_chain_order_with_every_field_as_it_was_hashed(db):
    """record_many writes a batch in one statement (on PostgreSQL, one JSON array): ids
    follow the chain, and every stored field is the value its hash was taken over, with
    awkward values (no address, IPv6, quotes, backslashes, non-ASCII, emergency access)."""
    record(actor=Actor(user_id=1, label="first"), action=AuditAction.CASE_VIEWED,
           object_type="case", object_id=1, case_id=1)
    contexts = [context.RequestContext(request_id=f"req-{n}", client_ip=ip, user_agent=agent)
                for n, (ip, agent) in enumerate([(None, ""), ("2001:db8::1", 'Firefox "quoted"'),
                                                 ("10.0.0.7", "back\\slash ünïcode")])]
    pending = [Pending(actor=Actor(user_id=n, label=f"user.{n}", agency="Children's services",
                                   role="Social worker", break_glass_id=n if n % 5 == 0 else None),
                       action=AuditAction.LIVE_DELIVERED,
                       object_type="note", object_id=1000 + n, case_id=n % 3 or None,
                       reason=f"live «{n}» 'x'", ctx=contexts[n % 3])
               for n in range(1, 31)]
    written = record_many(pending)
    stored = list(AuditEvent.objects.filter(pk__in=written).order_by("id"))
    assert [row.pk for row in stored] == written, "ids follow the batch's order"
    for p, row in zip(pending, stored, strict=True):
        assert (row.actor_id, row.actor_label, row.agency_label, row.role_label, row.break_glass_id) == (
            p.actor.user_id, p.actor.label, p.actor.agency, p.actor.role, p.actor.break_glass_id)
        assert (row.action, row.object_type, row.object_id, row.case_id, row.reason) == (
            p.action, p.object_type, str(p.object_id), p.case_id, p.reason)
        assert (row.request_id, row.client_ip, row.user_agent) == (
            p.ctx.request_id, p.ctx.client_ip, p.ctx.user_agent)
        assert chain.entry_hash(row.prev_hash, {f: getattr(row, f) for f in chain.FIELDS}) == row.entry_hash
    assert [row.prev_hash for row in stored[1:]] == [row.entry_hash for row in stored[:-1]]
    assert chain.verify().ok


def test_audit_verify_passes_an_intact_trail(db):
    _entries(5)
    walked = AuditEvent.objects.count()  # the command's own entry comes after the walk
    code, output = _verify()
    assert code == 0
    assert f"intact: {walked} entries" in output


def test_audit_verify_names_an_entry_whose_content_was_changed(db):
    entries = _entries(5)
    target = entries[2]
    with _triggers_lifted() as cursor:
        cursor.execute(f"UPDATE {audit_db.TABLE} SET actor_label = %s WHERE id = %s",
                       ["someone.else", target.pk])
    code, output = _verify()
    assert code == 1
    assert f"entry {target.pk}: its content was changed" in output


def test_audit_verify_names_the_entry_after_one_that_was_removed(db):
    entries = _entries(5)
    with _triggers_lifted() as cursor:
        cursor.execute(f"DELETE FROM {audit_db.TABLE} WHERE id = %s", [entries[1].pk])
    code, output = _verify()
    assert code == 1
    assert f"entry {entries[2].pk}: does not follow the entry before it" in output


def test_a_saved_head_detects_removal_of_the_newest_entries(db):
    entries = _entries(5)
    out = io.StringIO()
    before = AuditEvent.objects.count()  # the command's own entry comes after the head
    call_command("audit_head", stdout=out)
    head = out.getvalue().strip()
    count, digest = head.split(":")
    assert int(count) == before and digest == entries[-1].entry_hash
    assert _verify("--head", head)[0] == 0
    with _triggers_lifted() as cursor:
        cursor.execute(f"DELETE FROM {audit_db.TABLE} WHERE id >= %s", [entries[3].pk])
    # The shortened chain is still a chain: only the saved head shows what is missing.
    assert _verify()[0] == 0
    code, output = _verify("--head", head)
    assert code == 1
    assert "the newest entries were removed" in output


def test_a_saved_head_still_holds_after_more_entries(db):
    _entries(3)
    out = io.StringIO()
    call_command("audit_head", stdout=out)
    _entries(2)
    assert _verify("--head", out.getvalue().strip())[0] == 0


def test_a_malformed_head_is_refused_with_a_clear_message(db):
    with pytest.raises(CommandError, match="COUNT:HASH"):
        call_command("audit_verify", "--head", "twelve")


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_four_threads_appending_at_once_leave_a_valid_chain():
    assert connection.vendor == "postgresql"
    barrier = threading.Barrier(4)
    errors = []

    def append(worker: int):
        try:
            barrier.wait(timeout=10)
            for n in range(25):
                record(actor=Actor(user_id=worker, label=f"worker.{worker}"),
                       action=AuditAction.NOTE_VIEWED, object_type="note", object_id=n)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert AuditEvent.objects.filter(action=AuditAction.NOTE_VIEWED).count() == 100
    verdict = chain.verify()
    assert verdict.ok, verdict
    assert verdict.count == AuditEvent.objects.count()
