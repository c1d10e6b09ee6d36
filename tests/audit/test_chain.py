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
