"""The policy as the engine reads it: loaded once, cached per process.

A change in this process clears the cache when it commits. Changes made by
other processes are noticed by re-reading the version row at most every
RECHECK_SECONDS, so a warm decision costs no query at all and a policy edit
reaches every process within seconds.
"""

import hashlib
import json
import threading
import time
from dataclasses import asdict
from datetime import time as clock_time

from policies.engine import ActionSpec, Effect, PolicySnapshot, RuleSpec, Signal, TierSpec
from policies.models import PolicyVersion, RiskRule, RiskTier, SensitiveAction

RECHECK_SECONDS = 2.0

_lock = threading.Lock()
_cached: PolicySnapshot | None = None
_cached_number: int | None = None
_checked_at = 0.0


def _tier_spec(tier: RiskTier) -> TierSpec:
    return TierSpec(
        level=tier.level,
        name=tier.name,
        required_factors=tier.required_factors,
        allowed_methods=tuple(sorted(tier.allowed_methods)),
        require_distinct_channel=tier.require_distinct_channel,
        require_manager_attestation=tier.require_manager_attestation,
        require_id_proofing=tier.require_id_proofing,
        min_factor_age_days=tier.min_factor_age_days,
        challenge_ttl_seconds=tier.challenge_ttl_seconds,
        max_attempts=tier.max_attempts,
        verification_window_minutes=tier.verification_window_minutes,
        max_grant_minutes=tier.max_grant_minutes,
        approvals_required=tier.approvals_required,
        notify_security=tier.notify_security,
        cooling_off_hours=tier.cooling_off_hours,
    )


def _rule_spec(rule: RiskRule) -> RuleSpec:
    return RuleSpec(
        id=rule.pk,
        name=rule.name,
        signal=Signal(rule.signal),
        effect=Effect(rule.effect),
        levels=rule.levels or 0,
        target_level=rule.target_tier.level if rule.target_tier else None,
        actions=frozenset(action.code for action in rule.actions.all()),
        threshold=rule.threshold or 0,
        window_hours=rule.window_hours or 0,
        channels=frozenset(rule.channels or ()),
        timezone=rule.timezone or "UTC",
        business_start=rule.business_start or clock_time(8, 0),
        business_end=rule.business_end or clock_time(18, 0),
        business_days=frozenset(rule.business_days or range(5)),
    )


def _version_hash(
    tiers: tuple[TierSpec, ...], actions: dict[str, ActionSpec], rules: tuple[RuleSpec, ...]
) -> str:
    content = {
        "tiers": [asdict(t) for t in tiers],
        "actions": [asdict(a) for a in actions.values()],
        "rules": [asdict(r) for r in rules],
    }
    canonical = json.dumps(
        content, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, frozenset) else str(v)
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def snapshot_load() -> PolicySnapshot:
    """Read the whole policy in four queries."""
    tiers = tuple(_tier_spec(tier) for tier in RiskTier.objects.order_by("level"))
    actions = {
        action.code: ActionSpec(action.code, action.name, action.base_tier.level)
        for action in SensitiveAction.objects.select_related("base_tier").order_by("code")
    }
    rules = tuple(
        _rule_spec(rule)
        for rule in RiskRule.objects.filter(enabled=True)
        .select_related("target_tier")
        .prefetch_related("actions")
        .order_by("id")
    )
    return PolicySnapshot(_version_hash(tiers, actions, rules), tiers, actions, rules)


def _version_number() -> int:
    return PolicyVersion.objects.filter(pk=1).values_list("number", flat=True).first() or 0


def snapshot_current() -> PolicySnapshot:
    global _cached, _cached_number, _checked_at
    with _lock:
        now = time.monotonic()
        if _cached is not None and now - _checked_at < RECHECK_SECONDS:
            return _cached
        number = _version_number()
        if _cached is None or number != _cached_number:
            _cached, _cached_number = snapshot_load(), number
        _checked_at = now
        return _cached


def snapshot_invalidate() -> None:
    global _cached, _cached_number
    with _lock:
        _cached, _cached_number = None, None
