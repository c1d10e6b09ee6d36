"""Push with number matching, and manager attestation, answered by the recipient
on their own logged-in session (Duo-style Verified Push: the number is typed,
never picked from a list)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from audit.models import Outcome
from verification.cases import case_evaluate, case_event, case_fail, lock_case, lock_challenge
from verification.challenges import ANSWERED_BY_RECIPIENT
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import CaseState, Challenge, ChallengeState, SubjectHold
from verification.notices import notice_security
from verification.requirements import Method

DECISIONS = ("approve", "deny", "report")


def push_pending_for(user: Any) -> QuerySet[Challenge]:
    """Push challenges and attestation requests waiting for `user` now."""
    return (
        Challenge.objects.filter(
            recipient=user,
            method__in=ANSWERED_BY_RECIPIENT,
            state=ChallengeState.SENT,
            expires_at__gt=timezone.now(),
            case__state=CaseState.OPEN,
        )
        .select_related("case__agent", "case__subject")
        .order_by("created_at")
    )


@transaction.atomic
def push_decide(*, challenge: Challenge, user: Any, decision: str, number: str = "") -> Challenge:
    """1. Only the recipient answers, only a live push or attestation.
    2. approve: a push needs the number the agent read out, typed in; a wrong
       number spends an attempt (the challenge stays `sent` until the limit).
       An attestation is the manager's word.
    3. deny: the challenge and the case fail.
    4. report ("I'm not on a call"): the case is cancelled, the subject is put
       on hold, and security admins are told."""
    found = lock_challenge(challenge.pk)
    assert found is not None  # the caller loaded it
    challenge = found
    if challenge.recipient_id != user.pk or challenge.method not in ANSWERED_BY_RECIPIENT:
        raise NotAllowed("this challenge is not yours to answer")
    if decision not in DECISIONS:
        raise BadRequest(f"decision must be one of: {', '.join(DECISIONS)}", code="bad_decision")
    now = timezone.now()
    case = challenge.case
    if challenge.state != ChallengeState.SENT or case.state != CaseState.OPEN:
        raise WrongState(f"the challenge is {challenge.state}")
    if challenge.expires_at <= now:
        challenge.state = ChallengeState.EXPIRED
        challenge.save(update_fields=["state"])
        case_event("challenge_expired", case, outcome=Outcome.FAILURE, data={"challenge": challenge.pk})
        return challenge
    if decision == "approve":
        return _approve(challenge, user, number, now)
    if decision == "deny":
        challenge.state, challenge.answered_at = ChallengeState.DENIED, now
        challenge.save(update_fields=["state", "answered_at"])
        case_event(
            "challenge_denied", case, outcome=Outcome.FAILURE, actor=user, data={"challenge": challenge.pk}
        )
        case_fail(lock_case(case), reason=f"{user.get_username()} denied the request")
        return challenge
    challenge.state, challenge.answered_at = ChallengeState.REPORTED, now
    challenge.save(update_fields=["state", "answered_at"])
    until = now + timedelta(minutes=settings.VERIFICATION_REPORT_HOLD_MINUTES)
    SubjectHold.objects.create(
        subject=case.subject, until=until, reason=f"{user.get_username()} reported challenge {challenge.pk}"
    )
    locked = lock_case(case)
    locked.state, locked.closed_reason = CaseState.CANCELLED, "reported: not on a call"
    locked.save(update_fields=["state", "closed_reason"])
    locked.challenges.filter(state__in=[ChallengeState.QUEUED, ChallengeState.SENT]).update(
        state=ChallengeState.EXPIRED
    )
    case_event(
        "push_reported",
        locked,
        outcome=Outcome.BLOCKED,
        actor=user,
        data={"challenge": challenge.pk, "hold_until": until.isoformat(), "agent": case.agent.get_username()},
    )
    notice_security(
        headline=f"Impersonation reported by {user.get_username()}",
        message=f"{user.get_username()} reported a {case.action} request by agent "
        f"{case.agent.get_username()} (ticket {case.ticket or 'none'}) as not theirs. "
        f"Challenges to {case.subject.get_username()} are on hold until {until:%Y-%m-%d %H:%M} UTC.",
    )
    return challenge


def _approve(challenge: Challenge, user: Any, number: str, now: Any) -> Challenge:
    case = challenge.case
    if challenge.method == Method.PUSH and not constant_time_compare(
        str(number).strip(), challenge.match_number
    ):
        challenge.attempts += 1
        locked = challenge.attempts >= challenge.max_attempts
        if locked:
            challenge.state = ChallengeState.FAILED
        challenge.save(update_fields=["attempts", "state"])
        case_event(
            "challenge_failed",
            case,
            outcome=Outcome.FAILURE,
            actor=user,
            data={"challenge": challenge.pk, "wrong_number": True, "locked": locked},
        )
        if locked:
            case_fail(lock_case(case), reason=f"push {challenge.pk} locked: wrong numbers typed")
        # No exception: the spent attempt must be committed. The caller sees the
        # challenge still `sent` (or `failed`) with fewer attempts left.
        return challenge
    challenge.state, challenge.answered_at = ChallengeState.PASSED, now
    challenge.save(update_fields=["state", "answered_at"])
    case_event(
        "challenge_passed", case, actor=user, data={"challenge": challenge.pk, "method": challenge.method}
    )
    case_evaluate(lock_case(case))
    return challenge
