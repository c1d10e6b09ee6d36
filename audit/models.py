import hashlib
import json
from typing import Any, NoReturn

from django.db import models

GENESIS_HASH = "0" * 64


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    BLOCKED = "blocked", "Blocked"
    INFO = "info", "Info"


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit row through the ORM."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AppendOnlyError("audit events are append-only")


class AuditEvent(models.Model):
    """One step of one flow, chained to the previous row by SHA-256 (DESIGN "audit").

    Actor and subject are stored as usernames, not foreign keys: the record must
    outlive the accounts it names, and a cascading delete would break the chain.
    """

    seq = models.PositiveBigIntegerField(unique=True, editable=False, help_text="Position in the chain.")
    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, blank=True, db_index=True)
    subject = models.CharField(max_length=150, blank=True, db_index=True)
    verb = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, db_index=True)
    tier = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    channel = models.CharField(max_length=20, blank=True, db_index=True)
    action = models.CharField(max_length=40, blank=True, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "seq"], name="audit_target_idx"),
            # The admin's search matches a request id exactly; without it the search scans every row.
            models.Index(fields=["request_id"], name="audit_request_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.verb} {self.outcome} by {self.actor or '-'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only")

    def canonical(self) -> str:
        """The row as hashed: every recorded field, sorted keys, no whitespace."""
        return json.dumps(
            {
                "seq": self.seq,
                "at": self.at.isoformat(timespec="microseconds"),
                "actor": self.actor,
                "subject": self.subject,
                "verb": self.verb,
                "outcome": self.outcome,
                "tier": self.tier,
                "channel": self.channel,
                "action": self.action,
                "target_type": self.target_type,
                "target_id": self.target_id,
                "ip": self.ip,
                "request_id": self.request_id,
                "data": self.data,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()


class ChainHead(models.Model):
    """The single row every append locks: it serialises writers so the chain never forks,
    and it remembers the last hash and count so a deleted tail is detected too."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "chain head"

    def __str__(self) -> str:
        return f"chain head: {self.count} events, {self.hash[:12]}…"
