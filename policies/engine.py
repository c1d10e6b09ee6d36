"""The policy engine: `decide(snapshot, PolicyInput) -> Decision`.

Pure and deterministic: no ORM, no settings, no clock (the time is an input).
Rules only ever raise the tier or block. The requester's title, department,
seniority or urgency are not inputs at all: there is no fast lane to ask for.
"""

from collections.abc import Callable
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

    # Derived once per rule, not per decision.
    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    @cached_property
    def recency(self) -> timedelta:
        return timedelta(days=self.threshold)


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


@dataclass(frozen=True)
class _Step:
    """A rule as one action applies it, with its tier arithmetic resolved."""

    rule: RuleSpec
    check: RuleCheck
    # Tier index the rule raises to (escalate to), or how many tiers up (escalate by).
    target: int
    by: int


@dataclass(frozen=True)
class _Plan:
    base: int
    base_reason: str
    steps: tuple[_Step, ...]


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
    def _plans(self) -> dict[str, _Plan]:
        # Resolved once per snapshot, so a decision only runs the checks.
        plans = {}
        for code, action in self.actions.items():
            base = self.tier_index(action.base_level)
            steps = tuple(
                _Step(
                    rule=rule,
                    check=_CHECKS[rule.signal],
                    target=self.tier_index(rule.target_level or 0),
                    by=max(rule.levels, 0) if rule.effect is Effect.ESCALATE_BY else 0,
                )
                for rule in self.rules
                if not rule.actions or code in rule.actions
            )
            tier = self.tiers[base]
            plans[code] = _Plan(base, f"{action.name}: base tier {tier.level} ({tier.name})", steps)
        return plans

    @property
    def longest_window_hours(self) -> int:
        return max((rule.window_hours for rule in self.rules), default=0)


def _count_within(times: tuple[datetime, ...], at: datetime, window: timedelta) -> int:
    since = at - window
    count = 0
    for moment in times:
        if since <= moment <= at:
            count += 1
    return count


def _subject_privileged(rule: RuleSpec, data: PolicyInput) -> str | None:
    return "subject is privileged" if data.subject_privileged else None


def _factor_recently_enrolled(rule: RuleSpec, data: PolicyInput) -> str | None:
    enrolled = data.newest_factor_enrolled_at
    if enrolled is not None and data.at - enrolled < rule.recency:
        return f"a factor was enrolled less than {rule.threshold} day(s) ago"
    return None


def _contact_recently_changed(rule: RuleSpec, data: PolicyInput) -> str | None:
    changed = data.contact_changed_at
    if changed is not None and data.at - changed < rule.recency:
        return f"contact details changed less than {rule.threshold} day(s) ago"
    return None


def _off_hours(rule: RuleSpec, data: PolicyInput) -> str | None:
    local = data.at.astimezone(rule.zone)
    working = (
        local.weekday() in rule.business_days and rule.business_start <= local.time() < rule.business_end
    )
    return None if working else f"outside business hours ({rule.timezone})"


def _velocity(rule: RuleSpec, data: PolicyInput) -> str | None:
    count = _count_within(data.recent_case_times, data.at, rule.window)
    if count >= rule.threshold:
        return f"{count} case(s) for this subject in {rule.window_hours} h (limit {rule.threshold})"
    return None


def _requester_not_subject(rule: RuleSpec, data: PolicyInput) -> str | None:
    return None if data.requester_is_subject else "the requester is not the subject"


def _contact_channel(rule: RuleSpec, data: PolicyInput) -> str | None:
    return f"contact over {data.channel}" if data.channel in rule.channels else None


def _recent_failed_cases(rule: RuleSpec, data: PolicyInput) -> str | None:
    count = _count_within(data.recent_failed_case_times, data.at, rule.window)
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
    """1. Start at the action's base tier (or the input's floor, if higher).
    2. Apply every firing rule in id order; each may only move the tier up
       (by N levels, or to a named tier if that is higher) or block.
    3. Return the tier, whether blocked, and one reason per rule that mattered."""
    plan = snapshot._plans.get(data.action) if snapshot.tiers else None
    if plan is None:
        raise UnknownAction(f"no policy for action {data.action!r}")
    tiers = snapshot.tiers
    top = len(tiers) - 1
    index = plan.base
    reasons = [plan.base_reason]
    if data.floor_level and (floor := snapshot.tier_index(data.floor_level)) > index:
        index = floor
        reasons.append(
            f"raised to tier {tiers[index].level} ({tiers[index].name}): {data.floor_reason or 'required'}"
        )
    blocked = False
    for step in plan.steps:
        why = step.check(step.rule, data)
        if why is None:
            continue
        rule = step.rule
        if rule.effect is Effect.BLOCK:
            blocked = True
            reasons.append(f"blocked by rule '{rule.name}': {why}")
            continue
        target = min(index + step.by, top) if rule.effect is Effect.ESCALATE_BY else step.target
        if target > index:
            index = target
            reasons.append(
                f"escalated to tier {tiers[index].level} ({tiers[index].name}) by rule '{rule.name}': {why}"
            )
        else:
            reasons.append(f"rule '{rule.name}' applies ({why}); tier already {tiers[index].level}")
    return Decision(
        action=data.action,
        tier=tiers[index],
        blocked=blocked,
        reasons=tuple(reasons),
        policy_version=snapshot.version,
    )
