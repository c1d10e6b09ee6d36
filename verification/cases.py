"""Verification cases: open, evaluate, cancel, expire (DESIGN "verification")."""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from verification.errors import BadRequest, NotAllowed, VerificationError, WrongState
from verification.models import (
    CaseState,
    Challenge,
    ChallengeState,
    IdProofing,
    Purpose,
    SubjectHold,
    VerificationCase,
)
from verification.notices import notice_security
from verification.purposes import notify_verified
from verification.requirements import Method, Requirements

TERMINAL_CASE_STATES = {
    CaseState.EXECUTED,
    CaseState.FAILED,
    CaseState.BLOCKED,
    CaseState.EXPIRED,
    CaseState.CANCELLED,
    CaseState.ESCALATED,
}


def case_event(
    verb: str,
    case: VerificationCase,
    *,
    outcome: str = Outcome.SUCCESS,
    actor: Any = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One audit row about `case`, with its tier, channel and action filled in."""
    record(
        verb,
        outcome=outcome,
        actor=actor,
        subject=case.subject,
        tier=case.tier_level,
        channel=case.channel,
        action=case.action,
        target=case,
        data=data,
    )


@contextmanager
def refusals_audited(verb: str, case: VerificationCase | None = None, **event: Any) -> Iterator[None]:
    """Record a refused request as `blocked` and re-raise. Used around a service's
    transaction, so the record survives the rollback of whatever the request began."""
    try:
        yield
    except VerificationError as exc:
        data = {**event.pop("data", {}), "code": exc.code, "reason": str(exc)}
        if case is not None:
            case_event(verb, case, outcome=Outcome.BLOCKED, actor=event.get("actor"), data=data)
        else:
            record(verb, outcome=Outcome.BLOCKED, data=data, **event)
        raise


def _requirements_problem(requirements: Requirements) -> str:
    if requirements.factors < 0 or requirements.max_attempts < 1 or requirements.challenge_ttl_seconds < 1:
        return "factors must be ≥ 0, max_attempts and challenge_ttl_seconds ≥ 1"
    if requirements.verification_window_minutes < 1:
        return "verification_window_minutes must be ≥ 1"
    if requirements.factors and not requirements.factor_methods:
        return "factors are required but no factor method is allowed"
    if not (requirements.factors or requirements.manager_attestation or requirements.id_proofing):
        return "no proof is required at all"
    return ""


def case_open(
    *,
    subject: Any,
    agent: Any,
    action: str,
    channel: str,
    ticket: str,
    purpose: str,
    requirements: Requirements,
    decision: dict[str, Any],
    lost_factors: bool = False,
) -> VerificationCase:
    """1. Only agents open service-desk cases, and never about themselves.
    2. The requirements must make sense; the lost-factor path must be stricter,
       never weaker: manager attestation and ID proofing, then a cooling-off of
       at least VERIFICATION_FALLBACK_COOLING_OFF_HOURS (OWASP ASVS 6.4.4).
    3. Store the requirements and the decision handed in; a blocked decision
       makes a case that is blocked from the start.
    4. Audit (a refusal too); flag an agent who opens unusually many cases."""
    with refusals_audited(
        "case_refused", actor=agent, subject=subject, channel=channel, action=action, data={"ticket": ticket}
    ):
        return _case_open(
            subject=subject,
            agent=agent,
            action=action,
            channel=channel,
            ticket=ticket,
            purpose=purpose,
            requirements=requirements,
            decision=decision,
            lost_factors=lost_factors,
        )


@transaction.atomic
def _case_open(
    *,
    subject: Any,
    agent: Any,
    action: str,
    channel: str,
    ticket: str,
    purpose: str,
    requirements: Requirements,
    decision: dict[str, Any],
    lost_factors: bool,
) -> VerificationCase:
    if purpose == Purpose.SERVICE_DESK and not agent.has_perm("verification.open_case"):
        raise NotAllowed("only service-desk agents open verification cases")
    if agent.pk == subject.pk and purpose == Purpose.SERVICE_DESK:
        raise NotAllowed("an agent cannot open a case about themselves", code="self_verification")
    problem = _requirements_problem(requirements)
    if problem:
        raise BadRequest(f"unusable requirements: {problem}", code="bad_requirements")
    if lost_factors:
        if not (requirements.manager_attestation and requirements.id_proofing):
            raise BadRequest(
                "without factors, the manager must attest and identity must be proofed",
                code="weaker_fallback",
            )
        requirements = dataclasses.replace(
            requirements,
            cooling_off_hours=max(
                requirements.cooling_off_hours, settings.VERIFICATION_FALLBACK_COOLING_OFF_HOURS
            ),
        )
    now = timezone.now()
    blocked = bool(decision.get("blocked"))
    tier = decision.get("tier") or {}
    case = VerificationCase(
        subject=subject,
        agent=agent,
        action=action,
        channel=channel,
        ticket=ticket,
        purpose=purpose,
        state=CaseState.BLOCKED if blocked else CaseState.OPEN,
        requirements=requirements.as_dict(),
        decision=decision,
        tier_level=tier.get("level"),
        created_at=now,
        lost_factors=lost_factors,
        expires_at=now + timedelta(minutes=settings.VERIFICATION_CASE_OPEN_MINUTES),
        closed_reason="blocked by policy" if blocked else "",
    )
    try:
        # subject and agent are model instances already: no need for existence queries.
        case.full_clean(exclude=["subject", "agent"])
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        raise BadRequest(f"bad case: {problems}", code="bad_case") from exc
    case.save()
    case_event(
        "case_opened",
        case,
        actor=agent,
        data={
            "ticket": ticket,
            "purpose": purpose,
            "reasons": decision.get("reasons", []),
            "policy_version": decision.get("policy_version"),
            "lost_factors": lost_factors,
            "requirements": case.requirements,
        },
    )
    if blocked:
        case_event(
            "case_blocked",
            case,
            outcome=Outcome.BLOCKED,
            actor=agent,
            data={"reasons": decision.get("reasons", [])},
        )
    _flag_busy_agent(agent, now)
    if tier.get("level") and decision.get("notify_security"):
        notice_security(
            headline=f"{action} case for {subject.get_username()}",
            message=f"{agent.get_username()} opened a tier {tier['level']} case (ticket {ticket}).",
        )
    return case


def _flag_busy_agent(agent: Any, now: Any) -> None:
    opened = VerificationCase.objects.filter(agent=agent, created_at__gte=now - timedelta(hours=1)).count()
    if opened == settings.VERIFICATION_AGENT_CASES_PER_HOUR_FLAG:
        record(
            "agent_flagged",
            outcome=Outcome.INFO,
            actor=agent,
            subject=agent,
            data={"cases_last_hour": opened, "why": "unusually many cases in an hour"},
        )
        notice_security(
            headline=f"Agent {agent.get_username()} flagged",
            message=f"{opened} verification cases opened in the last hour.",
        )


def requirements_of(case: VerificationCase) -> Requirements:
    return Requirements.from_dict(case.requirements)


def lock_case(case: VerificationCase) -> VerificationCase:
    """Lock the case row only (not the people it names).

    Lock order everywhere: the case, then its challenges, then the audit chain
    head (taken by every audit.record). Whoever writes a challenge row holds its
    case first (a dispatch claim is one statement holding nothing else), so no
    transaction holding the head can wait on one holding a case: no deadlock."""
    return (
        VerificationCase.objects.select_for_update(of=("self",))
        .select_related("subject", "agent")
        .get(pk=case.pk)
    )


def lock_challenge(challenge_id: int) -> Challenge | None:
    """Lock a challenge after its case (see lock_case); None if there is no such challenge.
    Every answer comes here, so the case is found and locked in one narrow statement;
    the people it names load only if a step needs them."""
    cases = VerificationCase.objects.select_for_update(of=("self",))
    case = cases.filter(challenges__pk=challenge_id).first()
    if case is None:
        return None
    challenge = Challenge.objects.select_for_update().get(pk=challenge_id)
    challenge.case = case
    return challenge


def challenges_close(case: VerificationCase) -> None:
    """A closed or verified case waits for nothing: what is still queued or sent
    expires (a late code or push can no longer count, and the sweeper skips it)."""
    case.challenges.filter(state__in=[ChallengeState.QUEUED, ChallengeState.SENT]).update(
        state=ChallengeState.EXPIRED
    )


def case_evaluate(case: VerificationCase) -> VerificationCase:
    """Mark the case verified once every step the requirements name has passed.
    Called inside the transaction of the step that may have completed it."""
    if case.state != CaseState.OPEN:
        return case
    requirements = requirements_of(case)
    passed = list(case.challenges.filter(state=ChallengeState.PASSED).values_list("method", "device_id"))
    factors = {device for method, device in passed if method != Method.MANAGER_ATTESTATION}
    attested = any(method == Method.MANAGER_ATTESTATION for method, _ in passed)
    proofed = IdProofing.objects.filter(case=case).exists()
    if (
        len(factors) < requirements.factors
        or (requirements.manager_attestation and not attested)
        or (requirements.id_proofing and not proofed)
    ):
        return case
    now = timezone.now()
    case.state = CaseState.VERIFIED
    case.verified_at = now
    case.usable_from = now + timedelta(hours=requirements.cooling_off_hours) if case.lost_factors else now
    case.verified_until = case.usable_from + timedelta(minutes=requirements.verification_window_minutes)
    case.save(update_fields=["state", "verified_at", "usable_from", "verified_until"])
    challenges_close(case)
    case_event(
        "case_verified",
        case,
        data={
            "factors": len(factors),
            "manager_attestation": attested,
            "id_proofing": proofed,
            "usable_from": case.usable_from.isoformat(),
        },
    )
    if case.lost_factors:
        from verification.fallback import cooling_off_start

        cooling_off_start(case)
    notify_verified(case)
    return case


def case_fail(case: VerificationCase, *, reason: str, state: str = CaseState.FAILED) -> None:
    if case.state in TERMINAL_CASE_STATES:
        return
    case.state, case.closed_reason = state, reason
    case.save(update_fields=["state", "closed_reason"])
    challenges_close(case)
    verb = "case_escalated" if state == CaseState.ESCALATED else "case_failed"
    case_event(verb, case, outcome=Outcome.FAILURE, data={"reason": reason})


def _check_case_agent(case: VerificationCase, actor: Any) -> None:
    # Seeing a case (auditors, security admins) is not running it.
    if actor.pk != case.agent_id:
        raise NotAllowed("only the agent who opened the case may close or escalate it")


def case_cancel(*, case: VerificationCase, actor: Any, reason: str) -> VerificationCase:
    """Only the case's agent cancels (the requester, for a step-up). A refusal is audited."""
    with refusals_audited("case_cancel_refused", case, actor=actor), transaction.atomic():
        return _case_cancel(case=case, actor=actor, reason=reason)


def _case_cancel(*, case: VerificationCase, actor: Any, reason: str) -> VerificationCase:
    case = lock_case(case)
    _check_case_agent(case, actor)
    if case.state not in {CaseState.OPEN, CaseState.VERIFIED}:
        raise WrongState(f"a {case.state} case cannot be cancelled")
    case.state, case.closed_reason = CaseState.CANCELLED, reason[:200]
    case.save(update_fields=["state", "closed_reason"])
    challenges_close(case)
    case_event("case_cancelled", case, outcome=Outcome.INFO, actor=actor, data={"reason": reason})
    return case


def case_escalate(*, case: VerificationCase, actor: Any, note: str) -> VerificationCase:
    """The agent hands a failed or blocked case to security. A refusal is audited."""
    with refusals_audited("case_escalate_refused", case, actor=actor), transaction.atomic():
        return _case_escalate(case=case, actor=actor, note=note)


def _case_escalate(*, case: VerificationCase, actor: Any, note: str) -> VerificationCase:
    case = lock_case(case)
    _check_case_agent(case, actor)
    if case.state not in {CaseState.OPEN, CaseState.FAILED, CaseState.BLOCKED}:
        raise WrongState(f"a {case.state} case cannot be escalated")
    previous = case.state
    case.state, case.closed_reason = CaseState.ESCALATED, (note or f"escalated from {previous}")[:200]
    case.save(update_fields=["state", "closed_reason"])
    challenges_close(case)
    case_event(
        "case_escalated", case, outcome=Outcome.INFO, actor=actor, data={"from": previous, "note": note}
    )
    notice_security(
        headline=f"Case {case.pk} escalated",
        message=f"{actor.get_username()} escalated a {case.action} case for "
        f"{case.subject.get_username()} ({previous}): {note}",
    )
    return case


def subject_recent_failures(subject: Any, now: Any) -> int:
    """Wrong answers for this subject across every agent and case in 24 h
    (`attempts` counts wrong answers only)."""
    recent = Challenge.objects.filter(case__subject=subject, created_at__gte=now - timedelta(hours=24))
    return recent.aggregate(total=Sum("attempts"))["total"] or 0


def subject_on_hold(subject: Any, now: Any) -> bool:
    return SubjectHold.objects.filter(subject=subject, until__gt=now).exists()


def subject_hold(subject: Any, *, minutes: int, reason: str, now: Any) -> Any:
    """No challenge goes to the subject, and none passes, until the returned time."""
    until = now + timedelta(minutes=minutes)
    SubjectHold.objects.create(subject=subject, until=until, reason=reason[:200], created_at=now)
    return until


def cases_expire(now: Any = None) -> int:
    """Beat: open cases past their deadline, and verified cases never used in their window."""
    now = now or timezone.now()
    count = 0
    stale = VerificationCase.objects.filter(
        Q(state=CaseState.OPEN, expires_at__lt=now) | Q(state=CaseState.VERIFIED, verified_until__lt=now)
    )
    for case_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            case = lock_case(VerificationCase(pk=case_id))
            if (case.state == CaseState.OPEN and case.expires_at < now) or (
                case.state == CaseState.VERIFIED and case.verified_until and case.verified_until < now
            ):
                previous = case.state
                case.state, case.closed_reason = CaseState.EXPIRED, f"expired while {previous}"
                case.save(update_fields=["state", "closed_reason"])
                challenges_close(case)
                case_event("case_expired", case, outcome=Outcome.INFO, actor="system", data={"was": previous})
                count += 1
    return count
