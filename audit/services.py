import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from audit import context
from audit.models import GENESIS_HASH, AuditEvent, ChainHead, Outcome

Person = AbstractBaseUser | str | None


def _name(person: Person) -> str:
    if person is None:
        return ""
    if isinstance(person, str):
        return person
    return person.get_username()


def _json_safe(data: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so what is hashed is exactly what the database returns.
    return json.loads(json.dumps(data or {}, default=str))


@dataclass(frozen=True)
class Entry:
    """One event to append: what `record` takes, for `record_many`."""

    verb: str
    outcome: str = Outcome.SUCCESS
    actor: Person = None
    subject: Person = None
    tier: int | None = None
    channel: str = ""
    action: str = ""
    target: models.Model | None = None
    data: dict[str, Any] | None = None


def record(
    verb: str,
    *,
    outcome: str = Outcome.SUCCESS,
    actor: Person = None,
    subject: Person = None,
    tier: int | None = None,
    channel: str = "",
    action: str = "",
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain."""
    entry = Entry(verb, outcome, actor, subject, tier, channel, action, target, data)
    return record_many([entry])[0]


@transaction.atomic
def record_many(entries: Sequence[Entry]) -> list[AuditEvent]:
    """Append events to the chain, in order, under one lock of its head.

    1. Lock the chain head (row lock on PostgreSQL, the IMMEDIATE write lock on
       SQLite), so concurrent writers from any process queue up, never fork.
    2. Link each new row to the previous hash, hash it, insert them together.
    3. Move the head. The lock is released when the caller's transaction ends,
       so events rolled back with their flow leave no gap in the chain.
    """
    if not entries:
        return []
    ctx = context.current()
    head = ChainHead.objects.select_for_update().get_or_create(pk=1)[0]
    at = timezone.now()
    events = []
    for entry in entries:
        target = entry.target
        event = AuditEvent(
            seq=head.count + 1,
            at=at,
            actor=_name(entry.actor) or ctx.actor,
            subject=_name(entry.subject),
            verb=entry.verb,
            outcome=entry.outcome,
            tier=entry.tier,
            channel=entry.channel,
            action=entry.action,
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            ip=ctx.ip,
            request_id=ctx.request_id,
            data=_json_safe(entry.data),
            prev_hash=head.hash,
        )
        event.hash = event.compute_hash()
        head.hash, head.count = event.hash, event.seq
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    head.save(update_fields=["hash", "count"])
    return events


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_hash: str
    first_bad_id: int | None = None
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(
    *, progress: Callable[[Iterable[AuditEvent]], Iterable[AuditEvent]] | None = None
) -> ChainReport:
    """Recompute every hash in chain order and compare with the head.

    Names the first row that breaks the chain: an altered field changes its own
    hash; a deleted row leaves a gap in `seq` and a `prev_hash` that no longer
    matches; a deleted tail leaves the head pointing past the last row.
    """
    rows: Iterable[AuditEvent] = AuditEvent.objects.order_by("seq").iterator(chunk_size=2000)
    if progress is not None:
        rows = progress(rows)
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    for event in rows:
        problem = ""
        if event.seq != expected_seq:
            problem = f"row(s) missing before seq {event.seq} (expected seq {expected_seq})"
        elif event.prev_hash != expected_prev:
            problem = "prev_hash does not match the previous row's hash"
        elif event.compute_hash() != event.hash:
            problem = "content does not match its hash (row altered)"
        if problem:
            return ChainReport(False, count, expected_prev, event.pk, event.seq, problem)
        expected_prev, expected_seq, count = event.hash, event.seq + 1, count + 1
    head = ChainHead.objects.filter(pk=1).first()
    head_hash, head_count = (head.hash, head.count) if head else (GENESIS_HASH, 0)
    if (head_hash, head_count) != (expected_prev, count):
        return ChainReport(
            False,
            count,
            expected_prev,
            None,
            count + 1,
            f"chain head says {head_count} rows ending {head_hash[:12]}…, "
            f"the table holds {count} ending {expected_prev[:12]}… (tail deleted)",
        )
    return ChainReport(True, count, expected_prev)
