import hashlib
import hmac
import secrets
from base64 import b32encode

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from verification.encryption import EncryptedTextField
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
    lost_factors = models.BooleanField(
        default=False, help_text="The subject has lost their factors: the stricter fallback path."
    )
    usable_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Fallback path: the action may run only after the cooling-off period.",
    )
    execution_result = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject", "created_at"], name="case_subject_time_idx")]
        permissions = [
            ("open_case", "Can open verification cases (service-desk agent)"),
            ("perform_id_proofing", "Can check identity in person for the fallback path"),
        ]

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
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    # A worker holding this lease is sending the code; once it lapses (the worker
    # died mid-send) the sweeper may send a fresh one.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who answers: the subject, or their manager for an attestation.",
    )
    # Read out by the agent and typed in by the subject; useless without the
    # subject's own logged-in session, so the agent may see it.
    match_number = models.CharField(max_length=4, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"], name="challenge_state_time_idx")]

    def __str__(self) -> str:
        return f"challenge {self.pk}: {self.method} ({self.state})"

    def code_digest(self, code: str) -> str:
        """Keyed hash binding the code to this challenge: a leaked hash is useless
        elsewhere, and a guess cannot be checked offline without SECRET_KEY."""
        message = f"{self.pk}:{code}".encode()
        return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()

    def code_matches(self, code: str) -> bool:
        return bool(self.secret_hash) and hmac.compare_digest(self.secret_hash, self.code_digest(code))


class SMSDevice(TimestampMixin, Device):
    """A phone number that receives one-time codes by SMS."""

    number: "models.CharField[str, str]" = models.CharField(max_length=20, help_text="E.164.")


class PushDevice(TimestampMixin, Device):
    """Approval in the portal on the user's own logged-in session, with number matching."""


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (RFC 6238 TOTP: SHA1, 6 digits, 30 s). django-otp's
    TOTPDevice keeps the seed in clear; RFC 6238 section 5.1 asks for it encrypted,
    so this device keeps it as a Fernet token and decrypts it only when loaded."""

    key = EncryptedTextField(
        default=default_key, validators=[key_validator], help_text="Hex-encoded seed, encrypted at rest."
    )
    # Annotated because django-otp is untyped, so the stubs' plugin does not see a model here.
    step: "models.PositiveSmallIntegerField[int, int]" = models.PositiveSmallIntegerField(
        default=30, help_text="Time step in seconds."
    )
    t0: "models.BigIntegerField[int, int]" = models.BigIntegerField(
        default=0, help_text="Unix time at which steps start."
    )
    digits: "models.PositiveSmallIntegerField[int, int]" = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6
    )
    tolerance: "models.PositiveSmallIntegerField[int, int]" = models.PositiveSmallIntegerField(
        default=1, help_text="Steps early or late still accepted."
    )
    drift: "models.SmallIntegerField[int, int]" = models.SmallIntegerField(
        default=0, help_text="Steps the app is known to be off our clock."
    )
    last_t: "models.BigIntegerField[int, int]" = models.BigIntegerField(
        default=-1, help_text="Last accepted step: no code is accepted twice."
    )

    # django-otp's TOTP behaviour (verification, replay guard, throttling, otpauth URI),
    # unchanged: it reads `key`, which holds the plain seed once loaded.
    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings

    class Meta(Device.Meta):
        verbose_name = "authenticator app"


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """Single-use backup codes. django-otp's StaticDevice keeps them in clear; here only
    a keyed hash of each is kept, and a used code is deleted."""

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1))

    def issue_codes(self, count: int) -> list[str]:
        """New codes (8 base32 characters, 40 bits from `secrets`), shown once by the caller."""
        codes = [b32encode(secrets.token_bytes(5)).decode().lower() for _ in range(count)]
        BackupCode.objects.bulk_create(
            BackupCode(device=self, digest=backup_code_digest(code)) for code in codes
        )
        return codes

    def verify_token(self, token: object) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        # Hashes under SECRET_KEY_FALLBACKS too: rotating SECRET_KEY must not void codes people hold.
        keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        digests = [backup_code_digest(str(token), secret=key) for key in keys]
        used, _ = BackupCode.objects.filter(device=self, digest__in=digests).delete()
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return bool(used)

    class Meta(Device.Meta):
        verbose_name = "backup codes"
        verbose_name_plural = "backup codes"


def backup_code_digest(code: str, *, secret: str | bytes | None = None) -> str:
    """Keyed, because a 40-bit code hashed without a key is recovered by brute force."""
    normalized = code.strip().lower()
    return salted_hmac("vigil.backup-code", normalized, secret=secret, algorithm="sha256").hexdigest()


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, db_index=True, editable=False)

    def __str__(self) -> str:
        return f"backup code {self.pk} of device {self.device_id}"


class SubjectHold(models.Model):
    """No challenge goes to the subject until `until`: set when they report
    "I am not on a call" (push bombing, impersonation)."""

    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"hold on {self.subject_id} until {self.until:%Y-%m-%d %H:%M}"


class IdProofing(models.Model):
    """An in-person identity check for the fallback path, by a designated verifier."""

    case = models.OneToOneField(VerificationCase, on_delete=models.PROTECT, related_name="id_proofing")
    verifier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=40, default="in_person")
    evidence = models.CharField(max_length=200, help_text="What was checked, e.g. passport, last 4 digits.")
    checked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ID proofing for case {self.case_id} by {self.verifier_id}"


class OneTimeLink(models.Model):
    """A single-use link (password reset, enrolment, cancel a pending reset).
    Only the token's SHA-256 is kept; it lives at most 20 minutes unless it is a
    cooling-off cancel link, which lives as long as the cooling-off period."""

    class Kind(models.TextChoices):
        PASSWORD_RESET = "password_reset", "Password reset"
        ENROLMENT = "enrolment", "Factor enrolment"
        CANCEL = "cancel", "Cancel a pending reset"

    kind = models.CharField(max_length=20, choices=Kind)
    case = models.ForeignKey(VerificationCase, on_delete=models.PROTECT, related_name="links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} link for {self.user_id}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class Notice(models.Model):
    """A message to a person, kept until it is delivered, so a broker outage loses
    nothing (the sweeper re-sends what stayed queued). A link carrying a token is
    made only when the message goes out, so no token is stored in clear, here or in
    the broker; a re-send makes a fresh link and the earlier one stops working."""

    class Medium(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    medium = models.CharField(max_length=5, choices=Medium)
    to = models.CharField(max_length=254)
    name = models.CharField(max_length=150, blank=True, help_text="How the message greets the recipient.")
    headline = models.CharField(max_length=200)
    message = models.TextField()
    link = models.CharField(max_length=300, blank=True, help_text="A plain link, without a secret.")
    link_label = models.CharField(max_length=100, blank=True)
    link_kind = models.CharField(
        max_length=20, choices=OneTimeLink.Kind, blank=True, help_text="A one-time link made at sending."
    )
    link_expires_at = models.DateTimeField(null=True, blank=True)
    case = models.ForeignKey(
        VerificationCase, on_delete=models.PROTECT, null=True, blank=True, related_name="notices"
    )
    state = models.CharField(max_length=6, choices=State, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"], name="notice_state_time_idx")]

    def __str__(self) -> str:
        return f"{self.medium} notice {self.pk} to {self.to} ({self.state})"
