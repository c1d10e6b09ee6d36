import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AppendOnlyError, AuditEvent
from audit.services import record, verify_chain

pytestmark = pytest.mark.django_db


def test_each_event_links_to_the_previous_hash():
    first = record("case_opened", actor="agent", subject="subject")
    second = record("challenge_sent", actor="agent", subject="subject")
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    assert verify_chain().ok


def test_events_cannot_be_updated_or_deleted_through_the_orm():
    event = record("case_opened")
    event.verb = "nothing_happened"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_altered_row_is_named_by_verify_audit_chain():
    record("case_opened")
    victim = record("action_executed", data={"action": "password_reset"})
    record("case_closed")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'blocked' WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=f"id {victim.pk}"):
        call_command("verify_audit_chain")


def test_deleted_middle_row_is_detected():
    record("case_opened")
    middle = record("challenge_sent")
    after = record("challenge_passed")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [middle.pk])
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_id == after.pk
    assert "missing" in report.reason


def test_deleted_tail_is_detected_through_the_chain_head():
    record("case_opened")
    last = record("action_executed")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    report = verify_chain()
    assert not report.ok
    assert "tail deleted" in report.reason
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit_chain")


def test_intact_chain_exits_zero_with_a_summary(capsys):
    for verb in ("a", "b", "c"):
        record(verb, data={"when": verb})
    call_command("verify_audit_chain")
    assert "audit chain intact: 3 events" in capsys.readouterr().out


def test_rolled_back_event_leaves_no_gap():
    from django.db import transaction

    record("kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        record("rolled_back")
        raise RuntimeError
    record("kept_too")
    assert verify_chain().ok
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2]
