"""The policy engine: `decide(snapshot, PolicyInput) -> Decision`.

Pure and deterministic: no ORM, no settings, no clock (the time is an input).
Rules only ever raise the tier or block. The requester's title, department,
seniority or urgency are not inputs at all: there is no fast lane to ask for.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo


class Signal(StrEnum):
    SUBJECT_PRIVILEGED = "subject_privileged"
    FACTOR_RECENTLY_ENROLLED = "factor_recently_enrolled"
    CONTACT_RECENTLY_CHANGED = "contact_recently_changed"
    OFF_HOURS = "off_hours"
    VELOCITY = "velocity"
    REQUESTER_NOT_SUBJECT = "requester_not_subject"
    CONTACT_CHANNEL = "contact_channel"
    RECENT_FAILED_CASES = "recent_failed_cases"


class Effect(StrEnum):
    ESCALATE_BY = "escalate_by"
    ESCALATE_TO = "escalate_to"
    BLOCK = "block"


@dataclass(frozen=True)
class TierSpec:
    level: int
    name: str
    required_factors: int
    allowed_methods: tuple[str, ...]
    require_distinct_channel: bool
    require_manager_attestation: bool
    require_id_proofing: bool
    min_factor_age_days: int
    challenge_ttl_seconds: int
    max_attempts: int
    verification_window_minutes: int
    max_grant_minutes: int
    approvals_required: int
    notify_security: bool
    cooling_off_hours: int


@dataclass(frozen=True)
class ActionSpec:
    code: str
    name: str
    base_level: int


@dataclass(frozen=True)
class RuleSpec:
    id: int
    name: str
    signal: Signal
    effect: Effect
    levels: int = 0
    target_level: int | None = None
    # Empty means every action.
    actions: frozenset[str] = frozenset()
    threshold: int = 0
    window_hours: int = 0
    channels: frozenset[str] = frozenset()
    timezone: str = "UTC"
    business_start: time = time(8, 0)
    business_end: time = time(18, 0)
    business_days: frozenset[int] = frozenset(range(5))

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class PolicySnapshot:
    version: str
    tiers: tuple[TierSpec, ...]  # sorted by level
    actions: dict[str, ActionSpec]
    rules: tuple[RuleSpec, ...]  # sorted by id: the order escalations apply in

    def tier_index(self, level: int) -> int:
        """Position of the lowest tier at or above `level` (the top one if none is)."""
        for index, tier in enumerate(self.tiers):
            if tier.level >= level:
                return index
        return len(self.tiers) - 1

    @cached_property
    def _rules_by_action(self) -> "dict[str, tuple[tuple[RuleSpec, RuleCheck], ...]]":
        # Resolved once per snapshot: which rules concern each action, and their checks.
        return {
            code: tuple(
                (rule, _CHECKS[rule.signal])
                for rule in self.rules
                if not rule.actions or code in rule.actions
            )
            for code in self.actions
        }

    def rules_for(self, action: str) -> tuple[tuple[RuleSpec, "RuleCheck"], ...]:
        return self._rules_by_action.get(action, ())

    @property
    def longest_window_hours(self) -> int:
        return max((rule.window_hours for rule in self.rules), default=0)


@dataclass(frozen=True)
class PolicyInput:
    """What the engine may consider. Nothing here describes who the requester is
    in the organisation, nor how urgent they say it is."""

    action: str
    channel: str
    at: datetime  # aware
    subject_privileged: bool
    requester_is_subject: bool
    newest_factor_enrolled_at: datetime | None = None
    contact_changed_at: datetime | None = None
    recent_case_times: tuple[datetime, ...] = ()
    recent_failed_case_times: tuple[datetime, ...] = ()
    # A tier the thing asked for demands in itself (an entitlement's tier): the start, never a cap.
    floor_level: int = 0
    floor_reason: str = ""


@dataclass(frozen=True)
class Decision:
    action: str
    tier: TierSpec | None
    blocked: bool
    reasons: tuple[str, ...]
    policy_version: str


class UnknownAction(ValueError):
    pass


RuleCheck = Callable[[RuleSpec, PolicyInput], str | None]


def _count_within(times: Iterable[datetime], at: datetime, hours: int) -> int:
    since = at - timedelta(hours=hours)
    return sum(1 for moment in times if since <= moment <= at)


def _days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def _subject_privileged(rule: RuleSpec, data: PolicyInput) -> str | None:
    return "subject is privileged" if data.subject_privileged else None


def _factor_recently_enrolled(rule: RuleSpec, data: PolicyInput) -> str | None:
    enrolled = data.newest_factor_enrolled_at
    if enrolled is not None and _days_between(enrolled, data.at) < rule.threshold:
        return f"a factor was enrolled less than {rule.threshold} day(s) ago"
    return None


def _contact_recently_changed(rule: RuleSpec, data: PolicyInput) -> str | None:
    changed = data.contact_changed_at
    if changed is not None and _days_between(changed, data.at) < rule.threshold:
        return f"contact details changed less than {rule.threshold} day(s) ago"
    return None


def _off_hours(rule: RuleSpec, data: PolicyInput) -> str | None:
    local = data.at.astimezone(rule.zone)
    working = (
        local.weekday() in rule.business_days and rule.business_start <= local.time() < rule.business_end
    )
    return None if working else f"outside business hours ({rule.timezone})"


def _velocity(rule: RuleSpec, data: PolicyInput) -> str | None:
    count = _count_within(data.recent_case_times, data.at, rule.window_hours)
    if count >= rule.threshold:
        return f"{count} case(s) for this subject in {rule.window_hours} h (limit {rule.threshold})"
    return None


def _requester_not_subject(rule: RuleSpec, data: PolicyInput) -> str | None:
    return None if data.requester_is_subject else "the requester is not the subject"


def _contact_channel(rule: RuleSpec, data: PolicyInput) -> str | None:
    return f"contact over {data.channel}" if data.channel in rule.channels else None


def _recent_failed_cases(rule: RuleSpec, data: PolicyInput) -> str | None:
    count = _count_within(data.recent_failed_case_times, data.at, rule.window_hours)
    if count >= rule.threshold:
        return f"{count} failed case(s) for this subject in {rule.window_hours} h"
    return None


# Why a rule applies to an input, or None: one check per signal.
_CHECKS: dict[Signal, RuleCheck] = {
    Signal.SUBJECT_PRIVILEGED: _subject_privileged,
    Signal.FACTOR_RECENTLY_ENROLLED: _factor_recently_enrolled,
    Signal.CONTACT_RECENTLY_CHANGED: _contact_recently_changed,
    Signal.OFF_HOURS: _off_hours,
    Signal.VELOCITY: _velocity,
    Signal.REQUESTER_NOT_SUBJECT: _requester_not_subject,
    Signal.CONTACT_CHANNEL: _contact_channel,
    Signal.RECENT_FAILED_CASES: _recent_failed_cases,
}


def decide(snapshot: PolicySnapshot, data: PolicyInput) -> Decision:
    """1. Start at the action's base tier.
    2. Apply every firing rule in id order; each may only move the tier up
       (by N levels, or to a named tier if that is higher) or block.
    3. Return the tier, whether blocked, and one reason per rule that mattered."""
    action = snapshot.actions.get(data.action)
    if action is None or not snapshot.tiers:
        raise UnknownAction(f"no policy for action {data.action!r}")
    index = snapshot.tier_index(action.base_level)
    reasons = [f"{action.name}: base tier {snapshot.tiers[index].level} ({snapshot.tiers[index].name})"]
    if data.floor_level and snapshot.tier_index(data.floor_level) > index:
        index = snapshot.tier_index(data.floor_level)
        tier = snapshot.tiers[index]
        reasons.append(f"raised to tier {tier.level} ({tier.name}): {data.floor_reason or 'required'}")
    blocked = False
    top = len(snapshot.tiers) - 1
    for rule, check in snapshot.rules_for(data.action):
        why = check(rule, data)
        if why is None:
            continue
        if rule.effect is Effect.BLOCK:
            blocked = True
            reasons.append(f"blocked by rule '{rule.name}': {why}")
            continue
        if rule.effect is Effect.ESCALATE_BY:
            target = min(index + max(rule.levels, 0), top)
        else:
            target = snapshot.tier_index(rule.target_level if rule.target_level is not None else 0)
        if target > index:
            index = target
            tier = snapshot.tiers[index]
            reasons.append(f"escalated to tier {tier.level} ({tier.name}) by rule '{rule.name}': {why}")
        else:
            reasons.append(f"rule '{rule.name}' applies ({why}); tier already {snapshot.tiers[index].level}")
    return Decision(
        action=data.action,
        tier=snapshot.tiers[index],
        blocked=blocked,
        reasons=tuple(reasons),
        policy_version=snapshot.version,
    )
