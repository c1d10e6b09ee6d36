"""From the database to a decision, and from a decision to what verification enforces."""

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from policies.engine import Decision, PolicyInput, TierSpec, UnknownAction, decide
from policies.snapshot import snapshot_current
from verification.cases import case_open
from verification.devices import factors_of
from verification.models import CaseState, Purpose, VerificationCase
from verification.requirements import Method, Requirements

FAILED_CASE_STATES = (CaseState.FAILED, CaseState.ESCALATED)


def policy_input_build(
    *,
    subject: Any,
    action_code: str,
    channel: str,
    requester: Any,
    at: datetime,
    window_hours: int,
    floor_level: int = 0,
    floor_reason: str = "",
) -> PolicyInput:
    """Gather the signals about `subject` in a constant number of queries:
    one per factor type, one for recent cases."""
    enrolled = [
        device.created_at
        for _, device in factors_of(subject)
        if getattr(device, "created_at", None) is not None
    ]
    since = at - timedelta(hours=window_hours)
    recent = list(
        VerificationCase.objects.filter(
            subject=subject, created_at__gte=since, created_at__lte=at
        ).values_list("created_at", "state")
    )
    return PolicyInput(
        action=action_code,
        channel=channel,
        at=at,
        subject_privileged=bool(subject.is_privileged),
        requester_is_subject=requester is not None and requester.pk == subject.pk,
        newest_factor_enrolled_at=max(enrolled, default=None),
        contact_changed_at=subject.contact_changed_at,
        recent_case_times=tuple(created for created, _ in recent),
        recent_failed_case_times=tuple(created for created, state in recent if state in FAILED_CASE_STATES),
        floor_level=floor_level,
        floor_reason=floor_reason,
    )


def policy_decide(
    *,
    subject: Any,
    action_code: str,
    channel: str,
    requester: Any,
    at: datetime,
    floor_level: int = 0,
    floor_reason: str = "",
) -> Decision:
    snapshot = snapshot_current()
    if action_code not in snapshot.actions:
        raise UnknownAction(f"no policy for action {action_code!r}")
    data = policy_input_build(
        subject=subject,
        action_code=action_code,
        channel=channel,
        requester=requester,
        at=at,
        window_hours=snapshot.longest_window_hours,
        floor_level=floor_level,
        floor_reason=floor_reason,
    )
    return decide(snapshot, data)


def requirements_for(tier: TierSpec, *, lost_factors: bool = False) -> Requirements:
    """What verification must enforce at `tier`. Without factors, the path is
    stricter, never weaker: the manager attests, identity is proofed in person,
    and a cooling-off period lets the old factors cancel."""
    if lost_factors:
        return Requirements(
            factors=0,
            methods=frozenset({Method.MANAGER_ATTESTATION}),
            require_distinct_channel=tier.require_distinct_channel,
            manager_attestation=True,
            id_proofing=True,
            min_factor_age_days=tier.min_factor_age_days,
            challenge_ttl_seconds=tier.challenge_ttl_seconds,
            max_attempts=tier.max_attempts,
            verification_window_minutes=tier.verification_window_minutes,
            cooling_off_hours=tier.cooling_off_hours,
        )
    return Requirements(
        factors=tier.required_factors,
        methods=frozenset(Method(m) for m in tier.allowed_methods),
        require_distinct_channel=tier.require_distinct_channel,
        manager_attestation=tier.require_manager_attestation,
        id_proofing=tier.require_id_proofing,
        min_factor_age_days=tier.min_factor_age_days,
        challenge_ttl_seconds=tier.challenge_ttl_seconds,
        max_attempts=tier.max_attempts,
        verification_window_minutes=tier.verification_window_minutes,
    )


def decision_snapshot(decision: Decision) -> dict[str, Any]:
    """What a case keeps of the decision, for audit: opaque to verification."""
    tier = decision.tier
    return {
        "action": decision.action,
        "tier": {"level": tier.level, "name": tier.name} if tier else None,
        "blocked": decision.blocked,
        "notify_security": bool(tier and tier.notify_security),
        "reasons": list(decision.reasons),
        "policy_version": decision.policy_version,
    }


def verification_open(
    *,
    subject: Any,
    agent: Any,
    action_code: str,
    channel: str,
    ticket: str,
    purpose: str = Purpose.SERVICE_DESK,
    lost_factors: bool = False,
    at: datetime | None = None,
    requester: Any = None,
    floor_level: int = 0,
    floor_reason: str = "",
) -> VerificationCase:
    """Decide what the case needs, then open it with those requirements.
    `requester` is who the request is for when not the subject (the caller on a
    service-desk call claims to be the subject, so it defaults to them)."""
    decision = policy_decide(
        subject=subject,
        action_code=action_code,
        channel=channel,
        requester=requester or subject,
        at=at or timezone.now(),
        floor_level=floor_level,
        floor_reason=floor_reason,
    )
    assert decision.tier is not None  # decide() always picks a tier
    return case_open(
        subject=subject,
        agent=agent,
        action=action_code,
        channel=channel,
        ticket=ticket,
        purpose=purpose,
        requirements=requirements_for(decision.tier, lost_factors=lost_factors),
        decision=decision_snapshot(decision),
        lost_factors=lost_factors,
    )
