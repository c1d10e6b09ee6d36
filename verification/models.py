from django.conf import settings
from django.db import models
from django.utils import timezone

from verification.requirements import Channel, Method


class CaseState(models.TextChoices):
    OPEN = "open", "Open"
    VERIFIED = "verified", "Verified"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    ESCALATED = "escalated", "Escalated"


class Purpose(models.TextChoices):
    SERVICE_DESK = "service_desk", "Service-desk action"
    ACCESS_REQUEST = "access_request", "Access request step-up"


class VerificationCase(models.Model):
    """One attempt to prove who a person is before one action (DESIGN "verification").

    `requirements` and `decision` are handed in by whoever opened the case;
    `decision` (tier, reasons, policy version) is opaque here and kept for audit.
    """

    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="cases_opened",
        help_text="The service-desk agent, or the requester of an access request.",
    )
    action = models.CharField(max_length=40, db_index=True)
    channel = models.CharField(max_length=10, choices=Channel, db_index=True)
    ticket = models.CharField(max_length=64, blank=True)
    purpose = models.CharField(max_length=20, choices=Purpose, default=Purpose.SERVICE_DESK)
    state = models.CharField(max_length=10, choices=CaseState, default=CaseState.OPEN, db_index=True)
    requirements = models.JSONField(default=dict)
    decision = models.JSONField(default=dict)
    tier_level = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(help_text="An open case not verified by then expires.")
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_until = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject", "created_at"], name="case_subject_time_idx")]

    def __str__(self) -> str:
        return f"case {self.pk}: {self.action} for {self.subject_id} ({self.state})"


class ChallengeState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    DENIED = "denied", "Denied"
    REPORTED = "reported", "Reported"


class Challenge(models.Model):
    """One proof asked of the subject over one factor. The secret is kept only hashed."""

    case = models.ForeignKey(VerificationCase, on_delete=models.PROTECT, related_name="challenges")
    method = models.CharField(max_length=20, choices=Method)
    device_id = models.CharField(max_length=100, blank=True, help_text="django-otp persistent id.")
    state = models.CharField(
        max_length=10, choices=ChallengeState, default=ChallengeState.QUEUED, db_index=True
    )
    secret_hash = models.CharField(max_length=128, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"challenge {self.pk}: {self.method} ({self.state})"
