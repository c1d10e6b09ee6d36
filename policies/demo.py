"""The default policy: four tiers in the spirit of NIST SP 800-63B, the eight
actions of DESIGN, and the context rules switched on. Idempotent: objects that
exist (perhaps edited by an admin) are left as they are."""

from datetime import time
from typing import Any

from django.db import transaction

from policies.engine import Effect, Signal
from policies.models import RiskRule, RiskTier, SensitiveAction

ALL_FACTORS = ["totp", "push", "sms_otp", "email_otp", "backup_code"]
# Email codes are the weakest method (OWASP ASVS 6.3.5): above the lowest tier
# they are either not allowed or never enough alone (two factors required).
TIERS: list[dict[str, Any]] = [
    dict(
        level=1,
        name="Standard",
        required_factors=1,
        allowed_methods=ALL_FACTORS,
        min_factor_age_days=0,
        challenge_ttl_seconds=300,
        max_attempts=5,
        verification_window_minutes=15,
        max_grant_minutes=480,
        approvals_required=1,
    ),
    dict(
        level=2,
        name="Elevated",
        required_factors=1,
        allowed_methods=["totp", "push", "sms_otp", "backup_code"],
        min_factor_age_days=1,
        challenge_ttl_seconds=300,
        max_attempts=3,
        verification_window_minutes=10,
        max_grant_minutes=240,
        approvals_required=1,
    ),
    dict(
        level=3,
        name="Privileged",
        required_factors=2,
        allowed_methods=ALL_FACTORS,
        min_factor_age_days=7,
        challenge_ttl_seconds=180,
        max_attempts=3,
        verification_window_minutes=10,
        max_grant_minutes=120,
        approvals_required=2,
        notify_security=True,
    ),
    dict(
        level=4,
        name="Critical",
        required_factors=2,
        allowed_methods=["totp", "push", "backup_code", "manager_attestation"],
        require_manager_attestation=True,
        min_factor_age_days=7,
        challenge_ttl_seconds=120,
        max_attempts=3,
        verification_window_minutes=5,
        max_grant_minutes=60,
        approvals_required=2,
        notify_security=True,
        cooling_off_hours=48,
    ),
]

ACTIONS = [
    ("account_unlock", "Account unlock", 1, "account_unlock"),
    ("password_reset", "Password reset", 2, "password_reset_link"),
    ("contact_change", "Contact change", 2, "contact_change"),
    ("device_enrollment", "Device enrolment", 2, "enrolment_link"),
    ("access_grant", "Access grant", 2, "access_request"),
    ("mfa_reset", "MFA reset", 3, "enrolment_link"),
    ("data_export", "Data export", 3, "webhook"),
    ("role_escalation", "Role escalation", 4, "webhook"),
]

RULES: list[dict[str, Any]] = [
    dict(name="Privileged subject", signal=Signal.SUBJECT_PRIVILEGED, effect=Effect.ESCALATE_BY, levels=1),
    dict(
        name="Factor enrolled in the last 7 days",
        signal=Signal.FACTOR_RECENTLY_ENROLLED,
        effect=Effect.ESCALATE_BY,
        levels=1,
        threshold=7,
    ),
    dict(
        name="Contact details changed in the last 14 days",
        signal=Signal.CONTACT_RECENTLY_CHANGED,
        effect=Effect.ESCALATE_BY,
        levels=1,
        threshold=14,
    ),
    dict(
        name="Outside business hours",
        signal=Signal.OFF_HOURS,
        effect=Effect.ESCALATE_BY,
        levels=1,
        timezone="UTC",
        business_start=time(7, 0),
        business_end=time(19, 0),
        business_days=[0, 1, 2, 3, 4],
    ),
    dict(
        name="3 cases in 24 h",
        signal=Signal.VELOCITY,
        effect=Effect.ESCALATE_TO,
        target_level=4,
        threshold=3,
        window_hours=24,
    ),
    dict(name="6 cases in 24 h", signal=Signal.VELOCITY, effect=Effect.BLOCK, threshold=6, window_hours=24),
    dict(
        name="Requester is not the subject",
        signal=Signal.REQUESTER_NOT_SUBJECT,
        effect=Effect.ESCALATE_BY,
        levels=1,
    ),
    dict(
        name="Voice or chat for an MFA change (deepfake-prone)",
        signal=Signal.CONTACT_CHANNEL,
        effect=Effect.ESCALATE_BY,
        levels=1,
        channels=["phone", "chat"],
        actions=["mfa_reset", "device_enrollment"],
    ),
    dict(
        name="2 failed cases in 72 h",
        signal=Signal.RECENT_FAILED_CASES,
        effect=Effect.ESCALATE_TO,
        target_level=4,
        threshold=2,
        window_hours=72,
    ),
]


@transaction.atomic
def seed_policy() -> None:
    tiers = {}
    for spec in TIERS:
        values = dict(spec)
        tier, _ = RiskTier.objects.get_or_create(level=values.pop("level"), defaults=values)
        tiers[tier.level] = tier
    for code, name, level, executor in ACTIONS:
        SensitiveAction.objects.get_or_create(
            code=code, defaults={"name": name, "base_tier": tiers[level], "executor": executor}
        )
    for spec in RULES:
        values = dict(spec)
        action_codes = values.pop("actions", [])
        target_level = values.pop("target_level", None)
        if target_level is not None:
            values["target_tier"] = tiers[target_level]
        rule, created = RiskRule.objects.get_or_create(name=values.pop("name"), defaults=values)
        if created and action_codes:
            rule.actions.set(SensitiveAction.objects.filter(code__in=action_codes))


@transaction.atomic
def seed_entitlements(*, owner: Any) -> None:
    """Two demo entitlements that must not be held together (separation of duties)."""
    from django.contrib.auth.models import Group, Permission

    from policies.models import Entitlement

    admins, _ = Group.objects.get_or_create(name="Prod DB admins")
    admins.permissions.add(*Permission.objects.filter(codename__in=["view_riskrule", "view_risktier"]))
    auditors, _ = Group.objects.get_or_create(name="Prod DB auditors")
    elevated, critical = RiskTier.objects.get(level=2), RiskTier.objects.get(level=3)
    db_admin, _ = Entitlement.objects.get_or_create(
        name="Prod DB admin",
        defaults={
            "system": "PostgreSQL prod",
            "owner": owner,
            "tier": elevated,
            "max_minutes": 120,
            "group": admins,
            "description": "Superuser on the production database.",
        },
    )
    db_audit, _ = Entitlement.objects.get_or_create(
        name="Prod DB audit",
        defaults={
            "system": "PostgreSQL prod",
            "owner": owner,
            "tier": critical,
            "max_minutes": 60,
            "group": auditors,
            "description": "Reads the database audit log.",
        },
    )
    db_audit.conflicts.add(db_admin)
