"""Pure policy snapshots for engine tests: four tiers, eight actions."""

from datetime import UTC, datetime

from policies.engine import ActionSpec, Effect, PolicyInput, PolicySnapshot, RuleSpec, Signal, TierSpec

NOON_MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def tier(level: int, name: str) -> TierSpec:
    return TierSpec(
        level=level,
        name=name,
        required_factors=1 if level < 3 else 2,
        allowed_methods=("push", "totp"),
        require_distinct_channel=True,
        require_manager_attestation=level == 4,
        require_id_proofing=False,
        min_factor_age_days=level,
        challenge_ttl_seconds=300,
        max_attempts=3,
        verification_window_minutes=10,
        max_grant_minutes=60,
        approvals_required=1,
        notify_security=level > 2,
        cooling_off_hours=0,
    )


TIERS = (tier(1, "Standard"), tier(2, "Elevated"), tier(3, "Privileged"), tier(4, "Critical"))
ACTIONS = {
    code: ActionSpec(code, code.replace("_", " ").capitalize(), level)
    for code, level in [
        ("account_unlock", 1),
        ("password_reset", 2),
        ("contact_change", 2),
        ("device_enrollment", 2),
        ("access_grant", 2),
        ("mfa_reset", 3),
        ("data_export", 3),
        ("role_escalation", 4),
    ]
}

RULES = {
    Signal.SUBJECT_PRIVILEGED: RuleSpec(
        1, "privileged", Signal.SUBJECT_PRIVILEGED, Effect.ESCALATE_BY, levels=1
    ),
    Signal.FACTOR_RECENTLY_ENROLLED: RuleSpec(
        2, "new factor", Signal.FACTOR_RECENTLY_ENROLLED, Effect.ESCALATE_BY, levels=1, threshold=7
    ),
    Signal.CONTACT_RECENTLY_CHANGED: RuleSpec(
        3, "new contact", Signal.CONTACT_RECENTLY_CHANGED, Effect.ESCALATE_BY, levels=1, threshold=14
    ),
    Signal.OFF_HOURS: RuleSpec(
        4, "off hours", Signal.OFF_HOURS, Effect.ESCALATE_BY, levels=1, timezone="Europe/Berlin"
    ),
    Signal.VELOCITY: RuleSpec(
        5, "velocity", Signal.VELOCITY, Effect.ESCALATE_TO, target_level=4, threshold=3, window_hours=24
    ),
    Signal.REQUESTER_NOT_SUBJECT: RuleSpec(
        6, "third party", Signal.REQUESTER_NOT_SUBJECT, Effect.ESCALATE_BY, levels=1
    ),
    Signal.CONTACT_CHANNEL: RuleSpec(
        7,
        "voice",
        Signal.CONTACT_CHANNEL,
        Effect.ESCALATE_BY,
        levels=1,
        channels=frozenset({"phone", "chat"}),
    ),
    Signal.RECENT_FAILED_CASES: RuleSpec(
        8, "failures", Signal.RECENT_FAILED_CASES, Effect.BLOCK, threshold=2, window_hours=72
    ),
}


def snapshot(*rules: RuleSpec) -> PolicySnapshot:
    return PolicySnapshot("test-version", TIERS, ACTIONS, tuple(sorted(rules, key=lambda r: r.id)))


def quiet_input(**overrides: object) -> PolicyInput:
    """An input on which no rule fires: the subject calls about themselves, at noon, from the portal."""
    values: dict[str, object] = dict(
        action="password_reset",
        channel="walk_in",
        at=NOON_MONDAY,
        subject_privileged=False,
        requester_is_subject=True,
    )
    values.update(overrides)
    return PolicyInput(**values)  # type: ignore[arg-type]
