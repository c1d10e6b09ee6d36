"""What a case must meet, as handed in by whoever opens it (DESIGN "Dependency direction").

Verification enforces these; it never decides them and knows nothing of tiers.
"""

from dataclasses import dataclass

from django.db import models


class Method(models.TextChoices):
    EMAIL_OTP = "email_otp", "Email code"
    SMS_OTP = "sms_otp", "SMS code"
    TOTP = "totp", "Authenticator app code"
    PUSH = "push", "Push with number matching"
    BACKUP_CODE = "backup_code", "Backup code"
    MANAGER_ATTESTATION = "manager_attestation", "Manager attestation"


class Channel(models.TextChoices):
    """How the request reached the service desk."""

    PHONE = "phone", "Phone call"
    CHAT = "chat", "Chat"
    EMAIL = "email", "Email"
    WALK_IN = "walk_in", "Walk-in"
    PORTAL = "portal", "Portal"


# With require_distinct_channel, a challenge never travels over the contact channel.
SAME_CHANNEL_METHODS: dict[Channel, frozenset[Method]] = {
    Channel.EMAIL: frozenset({Method.EMAIL_OTP}),
    Channel.PHONE: frozenset({Method.SMS_OTP}),
    Channel.PORTAL: frozenset({Method.PUSH}),
    Channel.CHAT: frozenset(),
    Channel.WALK_IN: frozenset(),
}


@dataclass(frozen=True)
class Requirements:
    factors: int
    methods: frozenset[Method]
    require_distinct_channel: bool
    manager_attestation: bool
    id_proofing: bool
    min_factor_age_days: int
    challenge_ttl_seconds: int
    max_attempts: int
    verification_window_minutes: int
    # Lost-factor path only: how long the subject's old factors may cancel before the action can run.
    cooling_off_hours: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "factors": self.factors,
            "methods": sorted(self.methods),
            "require_distinct_channel": self.require_distinct_channel,
            "manager_attestation": self.manager_attestation,
            "id_proofing": self.id_proofing,
            "min_factor_age_days": self.min_factor_age_days,
            "challenge_ttl_seconds": self.challenge_ttl_seconds,
            "max_attempts": self.max_attempts,
            "verification_window_minutes": self.verification_window_minutes,
            "cooling_off_hours": self.cooling_off_hours,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Requirements":
        values = dict(data)
        values["methods"] = frozenset(Method(m) for m in values["methods"])  # type: ignore[attr-defined]
        return cls(**values)  # type: ignore[arg-type]

    @property
    def factor_methods(self) -> frozenset["Method"]:
        return self.methods - {Method.MANAGER_ATTESTATION}

    @property
    def allowed_methods(self) -> frozenset["Method"]:
        """What a challenge may use: a demanded attestation is allowed even if unlisted."""
        if self.manager_attestation:
            return self.methods | {Method.MANAGER_ATTESTATION}
        return self.methods
