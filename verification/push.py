"""Push with number matching, and manager attestation, answered by the recipient
on their own logged-in session (Duo-style Verified Push: the number is typed,
never picked from a list)."""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from audit.models import Outcome
from verification.cases import (
    case_event,
    case_fail,
    challenges_close,
    lock_challenge,
    subject_hold,
    subject_on_hold,
)
from verification.challenges import (
    ANSWERED_BY_RECIPIENT,
    challenge_expire_if_due,
    challenge_lock_held,
    challenge_pass,
    challenge_wrong_answer,
)
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import CaseState, Challenge, ChallengeState
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
       An attestation is the manager's word. While the subject is on hold an
       approval locks the challenge instead.
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
    if challenge_expire_if_due(challenge, now):
        return challenge
    if case.state != CaseState.OPEN:
        raise WrongState(f"the case is {case.state}; nothing to answer", code="case_closed")
    if challenge.state != ChallengeState.SENT:
        raise WrongState(f"the challenge is already {challenge.state}")
    if decision == "approve":
        return _approve(challenge, user, number, now)
    if decision == "deny":
        challenge.state, challenge.answered_at = ChallengeState.DENIED, now
        challenge.save(update_fields=["state", "answered_at"])
        case_event(
            "challenge_denied", case, outcome=Outcome.FAILURE, actor=user, data={"challenge": challenge.pk}
        )
        case_fail(case, reason=f"{user.get_username()} denied the request")
        return challenge
    challenge.state, challenge.answered_at = ChallengeState.REPORTED, now
    challenge.save(update_fields=["state", "answered_at"])
    until = subject_hold(
        case.subject,
        minutes=settings.VERIFICATION_REPORT_HOLD_MINUTES,
        reason=f"{user.get_username()} reported challenge {challenge.pk}",
        now=now,
    )
    case.state, case.closed_reason = CaseState.CANCELLED, "reported: not on a call"
    case.save(update_fields=["state", "closed_reason"])
    challenges_close(case)
    case_event(
        "push_reported",
        case,
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
    if subject_on_hold(challenge.case.subject, now):
        challenge_lock_held(challenge, actor=user)
        return challenge
    if challenge.method == Method.PUSH and not constant_time_compare(
        str(number).strip(), challenge.match_number
    ):
        # No exception: the spent attempt must be committed. The caller sees the
        # challenge still `sent` (or locked) with fewer attempts left.
        challenge_wrong_answer(challenge, actor=user, data={"wrong_number": True})
        return challenge
    challenge_pass(challenge, actor=user, now=now)
    return challenge
