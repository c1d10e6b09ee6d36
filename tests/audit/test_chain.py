import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.context import acting_as
from audit.models import AppendOnlyError, AuditEvent
from audit.services import record, verify_chain

pytestmark = pytest.mark.django_db


def tamper(event: AuditEvent, column: str, value: object) -> None:
    """Change a row behind the ORM's back, the way someone with database access would."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, event.pk])  # noqa: S608


def three_events() -> tuple[AuditEvent, AuditEvent, AuditEvent]:
    return (
        record("case_opened", actor="agent", subject="subject", channel="phone", action="password_reset"),
        record(
            "action_executed",
            actor="agent",
            subject="subject",
            tier=2,
            channel="phone",
            action="password_reset",
            data={"ticket": "INC-1"},
        ),
        record("case_closed", actor="agent", subject="subject"),
    )


def test_each_event_links_to_the_previous_hash():
    first = record("case_opened", actor="agent", subject="subject")
    second = record("challenge_sent", actor="agent", subject="subject")
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    assert second.hash == second.compute_hash()
    assert verify_chain().ok


def test_the_actor_comes_from_the_acting_context_when_not_given():
    with acting_as("nightly-job"):
        event = record("sweep_ran")
    assert event.actor == "nightly-job"
    assert record("after").actor == ""


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
    assert AuditEvent.objects.get(pk=event.pk).verb == "case_opened"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("at", "2020-01-01 00:00:00"),
        ("actor", "someone.else"),
        ("subject", "another.subject"),
        ("verb", "case_opened"),
        ("outcome", "blocked"),
        ("tier", 1),
        ("channel", "walk_in"),
        ("action", "mfa_reset"),
        ("target_type", "portal.user"),
        ("target_id", "42"),
        ("ip", "10.0.0.1"),
        ("request_id", "forged"),
        ("data", '{"ticket": "INC-2"}'),
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
    ],
)
def test_tampering_with_any_field_is_named_by_verify_audit_chain(column, value):
    _, victim, _ = three_events()
    tamper(victim, column, value)
    with pytest.raises(
        CommandError, match=f"BROKEN at seq {victim.seq} \\(first bad row: id {victim.pk}\\)"
    ) as exc:
        call_command("verify_audit_chain")
    assert exc.value.returncode == 1


def test_a_tampered_row_rehashed_to_match_still_breaks_the_next_link():
    _, victim, after = three_events()
    tamper(victim, "outcome", "blocked")
    forged = AuditEvent.objects.get(pk=victim.pk)
    tamper(victim, "hash", forged.compute_hash())
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_id == after.pk
    assert "prev_hash" in report.reason


def test_deleted_middle_row_is_detected():
    _, middle, after = three_events()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [middle.pk])
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_id == after.pk
    assert "missing" in report.reason
    with pytest.raises(CommandError, match=f"id {after.pk}"):
        call_command("verify_audit_chain")


def test_deleted_tail_is_detected_through_the_chain_head():
    *_, last = three_events()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    report = verify_chain()
    assert not report.ok
    assert "tail deleted" in report.reason
    with pytest.raises(CommandError, match=f"BROKEN at seq {last.seq} \\(chain head\\)"):
        call_command("verify_audit_chain")


def test_intact_chain_exits_zero_with_a_summary(capsys):
    *_, last = three_events()
    call_command("verify_audit_chain")
    assert capsys.readouterr().out.strip() == f"audit chain intact: 3 events, head {last.hash}"


def test_an_empty_chain_is_intact(capsys):
    call_command("verify_audit_chain")
    assert "audit chain intact: 0 events" in capsys.readouterr().out


def test_rolled_back_event_leaves_no_gap():
    record("kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        record("rolled_back")
        raise RuntimeError
    record("kept_too")
    assert verify_chain().ok
    assert list(AuditEvent.objects.order_by("seq").values_list("verb", flat=True)) == ["kept", "kept_too"]
