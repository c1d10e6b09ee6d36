from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from policies.engine import Effect, Signal
from verification.requirements import Channel, Method

SUBJECT_FACTOR_METHODS = [m.value for m in Method if m != Method.MANAGER_ATTESTATION]


class RiskTier(models.Model):
    """How strong verification must be. Higher level = stricter (DESIGN "policies")."""

    level = models.PositiveSmallIntegerField(unique=True, help_text="Higher is stricter. Unique.")
    name = models.CharField(max_length=60)
    required_factors = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Distinct factors the subject must pass.",
    )
    allowed_methods = models.JSONField(
        default=list, help_text="Methods a challenge may use at this tier (email_otp, sms_otp, totp, …)."
    )
    require_distinct_channel = models.BooleanField(
        default=True, help_text="Never send a challenge over the channel the request came in on."
    )
    require_manager_attestation = models.BooleanField(default=False)
    require_id_proofing = models.BooleanField(default=False)
    min_factor_age_days = models.PositiveSmallIntegerField(
        default=0, help_text="Factors enrolled more recently do not count (SIM-swap defence)."
    )
    challenge_ttl_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(30), MaxValueValidator(600)],
        help_text="How long a code lives: 30 s to 10 min.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Wrong answers before a challenge locks: 1 to 10.",
    )
    verification_window_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1)], help_text="How long a verified case may be used."
    )
    max_grant_minutes = models.PositiveIntegerField(
        default=240, validators=[MinValueValidator(1)], help_text="Longest access grant at this tier."
    )
    approvals_required = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    notify_security = models.BooleanField(default=False, help_text="Email security admins on each case.")
    cooling_off_hours = models.PositiveSmallIntegerField(
        default=24,
        validators=[MinValueValidator(1)],
        help_text="Lost-factor path: hours the old factors have to cancel before the action can run.",
    )

    class Meta:
        ordering = ["level"]

    def __str__(self) -> str:
        return f"{self.level} · {self.name}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        methods = self.allowed_methods if isinstance(self.allowed_methods, list) else None
        known = {m.value for m in Method}
        if methods is None or not methods:
            errors["allowed_methods"] = "Choose at least one method."
        elif unknown := sorted(set(methods) - known):
            errors["allowed_methods"] = f"Unknown method(s): {', '.join(unknown)}."
        else:
            factor_methods = [m for m in methods if m in SUBJECT_FACTOR_METHODS]
            if self.required_factors and self.required_factors > len(factor_methods):
                errors["required_factors"] = (
                    f"{self.required_factors} factors required but only {len(factor_methods)} "
                    "subject factor method(s) allowed."
                )
        if errors:
            raise ValidationError(errors)


class SensitiveAction(models.Model):
    class Code(models.TextChoices):
        PASSWORD_RESET = "password_reset", "Password reset"
        MFA_RESET = "mfa_reset", "MFA reset"
        DEVICE_ENROLLMENT = "device_enrollment", "Device enrolment"
        ACCOUNT_UNLOCK = "account_unlock", "Account unlock"
        CONTACT_CHANGE = "contact_change", "Contact change"
        ROLE_ESCALATION = "role_escalation", "Role escalation"
        DATA_EXPORT = "data_export", "Data export"
        ACCESS_GRANT = "access_grant", "Access grant"

    code = models.CharField(max_length=40, unique=True, choices=Code)
    name = models.CharField(max_length=80)
    base_tier = models.ForeignKey(RiskTier, on_delete=models.PROTECT, related_name="actions")
    executor = models.CharField(
        max_length=40, blank=True, help_text="What runs once a case is verified (set by the action code)."
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class RiskRule(models.Model):
    """A context signal and what it does. Rules only raise the tier or block."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    signal = models.CharField(max_length=40, choices=[(s.value, s.value.replace("_", " ")) for s in Signal])
    effect = models.CharField(max_length=20, choices=[(e.value, e.value.replace("_", " ")) for e in Effect])
    levels = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="For 'escalate by': how many tiers up."
    )
    target_tier = models.ForeignKey(
        RiskTier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="For 'escalate to': the tier to raise to (never lowers).",
    )
    actions = models.ManyToManyField(
        SensitiveAction, blank=True, related_name="rules", help_text="Leave empty for every action."
    )
    threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Velocity / failed cases: how many cases; recently enrolled / contact changed: days.",
    )
    window_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Velocity / failed cases: counted over this many hours."
    )
    channels = models.JSONField(
        default=list, blank=True, help_text="Contact channel: the channels that fire it (e.g. phone, chat)."
    )
    timezone = models.CharField(max_length=60, default="UTC", help_text="Off-hours: IANA time zone.")
    business_start = models.TimeField(null=True, blank=True, help_text="Off-hours: business day starts.")
    business_end = models.TimeField(null=True, blank=True, help_text="Off-hours: business day ends.")
    business_days = models.JSONField(
        default=list, blank=True, help_text="Off-hours: working weekdays, 0 = Monday … 6 = Sunday."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.effect == Effect.ESCALATE_BY and not self.levels:
            errors["levels"] = "'Escalate by' needs the number of levels (at least 1)."
        if self.effect == Effect.ESCALATE_TO and self.target_tier_id is None:
            errors["target_tier"] = "'Escalate to' needs a target tier."
        if self.signal in {Signal.VELOCITY, Signal.RECENT_FAILED_CASES}:
            if not self.threshold:
                errors["threshold"] = "This signal needs a threshold (number of cases, at least 1)."
            if not self.window_hours:
                errors["window_hours"] = "This signal needs a window in hours."
        recency = {Signal.FACTOR_RECENTLY_ENROLLED, Signal.CONTACT_RECENTLY_CHANGED}
        if self.signal in recency and not self.threshold:
            errors["threshold"] = "This signal needs a threshold in days (at least 1)."
        if self.signal == Signal.CONTACT_CHANNEL:
            channels = self.channels if isinstance(self.channels, list) else []
            valid = {c.value for c in Channel}
            if not channels or not set(channels) <= valid:
                errors["channels"] = f"Choose one or more of: {', '.join(sorted(valid))}."
        if self.signal == Signal.OFF_HOURS:
            errors.update(self._off_hours_errors())
        if errors:
            raise ValidationError(errors)

    def _off_hours_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = f"Unknown time zone {self.timezone!r}."
        if self.business_start is None or self.business_end is None:
            errors["business_start"] = "Off-hours needs business start and end times."
        elif self.business_start >= self.business_end:
            errors["business_end"] = "Business end must be after business start."
        days = self.business_days if isinstance(self.business_days, list) else None
        if not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            errors["business_days"] = "Give working weekdays as numbers 0 (Monday) to 6 (Sunday)."
        return errors


class PolicyVersion(models.Model):
    """Bumped in the same transaction as any policy change; caches compare against it."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    number = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"policy version {self.number}"
