"""On PostgreSQL the database itself refuses to change or remove audit rows."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent, ChainHead
from audit.services import record, verify_chain

pytestmark = pytest.mark.django_db


def raw(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_trigger_is_installed():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal"
        )
        assert cursor.fetchall() == [("audit_auditevent_append_only",)]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("UPDATE audit_auditevent SET outcome = 'success' WHERE id = %s", []),
        ("UPDATE audit_auditevent SET data = '{}'::jsonb, hash = hash WHERE id = %s", []),
        ("DELETE FROM audit_auditevent WHERE id = %s", []),
    ],
)
def test_updates_and_deletes_are_refused_by_the_database(sql, params):
    victim = record(
        "case_blocked", outcome="blocked", actor="agent", subject="subject", data={"why": "policy"}
    )
    with pytest.raises(IntegrityError, match=r"audit events are append-only: (UPDATE|DELETE) refused"):
        raw(sql, [*params, victim.pk])
    kept = AuditEvent.objects.get(pk=victim.pk)
    assert (kept.outcome, kept.data, kept.hash) == ("blocked", {"why": "policy"}, victim.hash)
    assert verify_chain().ok


def test_a_bulk_delete_is_refused_too():
    record("one")
    record("two")
    with pytest.raises(IntegrityError, match="DELETE refused"):
        raw("DELETE FROM audit_auditevent", [])
    assert AuditEvent.objects.count() == 2


def test_appends_still_move_the_chain_head():
    first = record("case_opened")
    second = record("case_verified")
    head = ChainHead.objects.get(pk=1)
    assert (head.hash, head.count) == (second.hash, second.seq)
    assert second.prev_hash == first.hash


def test_unapplying_the_migration_removes_the_trigger(transactional_db):
    call_command("migrate", "audit", "0002", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_auditevent_append_only'")
            assert cursor.fetchone() == (0,)
    finally:
        call_command("migrate", "audit", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_auditevent_append_only'")
        assert cursor.fetchone() == (1,)
