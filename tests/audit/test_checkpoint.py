import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.management import progress
from audit.models import AuditEvent, ChainHead
from audit.services import record

pytestmark = pytest.mark.django_db


def checkpoint(capsys) -> str:
    call_command("audit_checkpoint")
    return capsys.readouterr().out.strip().splitlines()[-1]


def some_events(n: int = 4) -> list[AuditEvent]:
    return [record("case_opened", actor="agent", subject=f"user{i}", data={"i": i}) for i in range(n)]


def rewrite_history(from_seq: int, **changes) -> None:
    """What someone with database access and this source code could do: alter
    a row, then recompute every hash after it and the head, so that
    verify_audit_chain alone finds nothing wrong."""
    with connection.cursor() as cursor:
        previous = AuditEvent.objects.get(seq=from_seq - 1).hash if from_seq > 1 else "0" * 64
        for event in AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq"):
            for name, value in changes.items():
                setattr(event, name, value)
            event.prev_hash = previous
            event.hash = event.compute_hash()
            cursor.execute(
                "UPDATE audit_auditevent SET subject = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [event.subject, event.prev_hash, event.hash, event.pk],
            )
            previous = event.hash
            changes = {}
        cursor.execute("UPDATE audit_chainhead SET hash = %s WHERE id = 1", [previous])


def test_prints_the_head_as_hash_colon_count(capsys):
    *_, last = some_events()
    line = checkpoint(capsys)
    assert line == f"{last.hash}:{last.seq}"
    taken = AuditEvent.objects.filter(verb="audit_checkpoint_taken").get()
    assert taken.actor == "audit_checkpoint"
    assert taken.data == {"hash": last.hash, "count": last.seq}


def test_an_earlier_checkpoint_still_holds_after_more_events(capsys):
    some_events()
    line = checkpoint(capsys)
    some_events(3)
    call_command("audit_checkpoint", "--check", line)
    assert "holds; chain intact" in capsys.readouterr().out


def test_a_rewritten_history_is_caught_even_when_the_chain_was_rehashed(capsys):
    events = some_events()
    line = checkpoint(capsys)
    rewrite_history(events[1].seq, subject="someone.else")
    call_command("verify_audit_chain")  # the rehashed chain is self-consistent...
    with pytest.raises(CommandError, match=f"event {events[-1].seq} now hashes to .*rewritten") as raised:
        call_command("audit_checkpoint", "--check", line)  # ...but not the same chain
    assert raised.value.returncode == 1
    assert AuditEvent.objects.filter(verb="audit_checkpoint_checked", outcome="failure").exists()


def test_a_truncated_chain_no_longer_holds_the_checkpoint(capsys):
    some_events()
    line = checkpoint(capsys)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")
        cursor.execute("UPDATE audit_chainhead SET hash = %s, count = 0 WHERE id = 1", ["0" * 64])
    with pytest.raises(CommandError, match="the chain holds 0 events; the checkpoint's event 4 is gone"):
        call_command("audit_checkpoint", "--check", line)


def test_a_broken_chain_fails_the_check(capsys):
    events = some_events()
    line = checkpoint(capsys)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor = 'x' WHERE id = %s", [events[0].pk])
    with pytest.raises(CommandError, match=f"BROKEN at seq {events[0].seq}"):
        call_command("audit_checkpoint", "--check", line)


@pytest.mark.parametrize("bad", ["abc", "f" * 64, "f" * 63 + ":3", "f" * 64 + ":-1", "f" * 64 + ":x"])
def test_a_malformed_checkpoint_is_refused(bad):
    with pytest.raises(CommandError, match="expected HASH:COUNT"):
        call_command("audit_checkpoint", "--check", bad)


def test_a_head_that_disagrees_with_the_table_is_no_checkpoint():
    some_events()
    ChainHead.objects.filter(pk=1).update(hash="e" * 64)
    with pytest.raises(CommandError, match="run verify_audit_chain"):
        call_command("audit_checkpoint")


def test_verify_audit_chain_draws_a_progress_bar_on_big_chains(monkeypatch, capsys):
    some_events(5)
    monkeypatch.setattr(progress, "PROGRESS_FROM_ROWS", 5)
    call_command("verify_audit_chain")
    captured = capsys.readouterr()
    assert "verify chain: 100%" in captured.err
    assert "5.00/5.00" in captured.err
    assert captured.out.startswith("audit chain intact: 5 events")
    call_command("verify_audit_chain", "--no-progress")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "PROGRESS_FROM_ROWS", 6)
    call_command("verify_audit_chain")
    assert capsys.readouterr().err == ""
