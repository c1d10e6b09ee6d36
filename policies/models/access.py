"""Time-boxed access: what can be granted, who asked, who approved, what was granted."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

from policies.models.policy import RiskTier


class Provisioner(models.TextChoices):
    DJANGO_GROUP = "django_group", "Django group membership"
    WEBHOOK = "webhook", "Signed webhook to an external system"
    MANUAL = "manual", "Manual (an operator's task list)"


class Entitlement(models.Model):
    """Something that can be granted for a while: a role or group in some system."""

    name = models.CharField(max_length=120, unique=True)
    system = models.CharField(max_length=80, help_text="Where the access lives, e.g. 'Vigil', 'AWS prod'.")
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_entitlements",
        help_text="May approve requests for it, besides users with the Approver role.",
    )
    tier = models.ForeignKey(
        RiskTier,
        on_delete=models.PROTECT,
        related_name="entitlements",
        help_text="The least verification the requester passes; the policy may ask more.",
    )
    max_minutes = models.PositiveIntegerField(help_text="Longest grant; the tier's cap applies too.")
    provisioner = models.CharField(max_length=20, choices=Provisioner, default=Provisioner.DJANGO_GROUP)
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Django group provisioner: the group granted.",
    )
    webhook_url = models.URLField(blank=True, help_text="Webhook provisioner: where grant/revoke is POSTed.")
    conflicts = models.ManyToManyField(
        "self",
        blank=True,
        symmetrical=True,
        help_text="Separation of duties: nobody holds this and any of these at once.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.system})"

    def cap_minutes(self) -> int:
        return min(self.max_minutes, self.tier.max_grant_minutes)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.provisioner == Provisioner.DJANGO_GROUP and self.group_id is None:
            raise ValidationError({"group": "A Django group provisioner needs a group."})
        if self.provisioner == Provisioner.WEBHOOK and not self.webhook_url:
            raise ValidationError({"webhook_url": "A webhook provisioner needs a URL."})


class RequestState(models.TextChoices):
    PENDING_VERIFICATION = "pending_verification", "Waiting for the requester's step-up"
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    APPROVED = "approved", "Approved, starts later"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class AccessRequest(models.Model):
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    beneficiary = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="requests")
    justification = models.TextField()
    ticket = models.CharField(max_length=64, blank=True)
    duration_minutes = models.PositiveIntegerField()
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as approved.")
    extends = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="extensions"
    )
    state = models.CharField(
        max_length=24, choices=RequestState, default=RequestState.PENDING_VERIFICATION, db_index=True
    )
    verification = models.OneToOneField(
        "verification.VerificationCase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="access_request",
    )
    tier_level = models.PositiveSmallIntegerField(null=True, blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    respond_by = models.DateTimeField(help_text="An unanswered request expires then.")
    decided_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        permissions = [("review_accessrequest", "Can see every access request and grant")]

    def __str__(self) -> str:
        return f"request {self.pk}: {self.entitlement} for {self.beneficiary}"


class Approval(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        DENY = "deny", "Deny"

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="one_decision_per_approver")
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver_id} on request {self.request_id}"


class GrantQuerySet(models.QuerySet["Grant"]):
    def active(self, at: datetime | None = None) -> "QuerySet[Grant]":
        """Grants that confer access at `at`: started, not expired, not revoked.
        Every list and check uses this, so nothing waits for a worker to expire them."""
        at = at or timezone.now()
        return self.filter(starts_at__lte=at, expires_at__gt=at).filter(
            Q(revoked_at__isnull=True) | Q(revoked_at__gt=at)
        )

    def removal_failing(self, at: datetime | None = None) -> "QuerySet[Grant]":
        """Past their end with the access still in place after failed attempts to take
        it away: retried with backoff, and shown to operators until it is gone."""
        at = at or timezone.now()
        return self.filter(Q(expires_at__lte=at) | Q(revoked_at__lte=at), ended_at=None).filter(
            deprovision_attempts__gt=0
        )

    def manual_waiting(self) -> "QuerySet[Grant]":
        return self.filter(provisioning=Grant.Provisioning.MANUAL)


class Grant(models.Model):
    class Provisioning(models.TextChoices):
        PENDING = "pending", "Waiting to provision"
        PROVISIONED = "provisioned", "Provisioned"
        DEPROVISIONED = "deprovisioned", "Deprovisioned"
        FAILED = "failed", "Deprovisioning failing"
        MANUAL = "manual", "Waiting for an operator"

    request = models.OneToOneField(AccessRequest, on_delete=models.PROTECT, related_name="grant")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants")
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="grants")
    starts_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=300, blank=True)
    provisioning = models.CharField(
        max_length=20, choices=Provisioning, default=Provisioning.PENDING, db_index=True
    )
    provisioning_error = models.CharField(max_length=300, blank=True)
    deprovision_attempts = models.PositiveSmallIntegerField(default=0)
    expiry_notice_sent_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When expiry or revocation was processed."
    )

    objects = GrantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "entitlement", "expires_at"], name="grant_user_ent_idx")]

    def __str__(self) -> str:
        return f"{self.entitlement} for {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"

    def ends_at(self) -> datetime:
        return min(self.expires_at, self.revoked_at) if self.revoked_at else self.expires_at

    def state(self, at: datetime | None = None) -> str:
        at = at or timezone.now()
        if self.revoked_at and self.revoked_at <= at:
            return "revoked"
        if self.expires_at <= at:
            return "expired"
        return "active" if self.starts_at <= at else "scheduled"
