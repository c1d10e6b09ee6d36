"""Challenges: ask, deliver, answer (DESIGN "verification", NIST SP 800-63B 5.1.3, 5.2.2)."""

import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_otp.models import Device

from audit.models import Outcome
from verification.cases import (
    case_evaluate,
    case_event,
    case_fail,
    lock_case,
    lock_challenge,
    refusals_audited,
    requirements_of,
    subject_hold,
    subject_on_hold,
    subject_recent_failures,
)
from verification.channels import DeliveryError, email_send, sms_send
from verification.devices import METHOD_DEVICE, factor_usable_from, factors_of
from verification.errors import BadRequest, NotAllowed, Throttled, WrongState
from verification.models import (
    CaseState,
    Challenge,
    ChallengeState,
    PushDevice,
    SMSDevice,
    VerificationCase,
)
from verification.notices import DELIVERY_LEASE, enqueue_on_commit, notice_security, notice_to
from verification.requirements import SAME_CHANNEL_METHODS, Channel, Method

CODE_DIGITS = 6  # NIST SP 800-63B 5.1.3.1: at least 20 bits of entropy (10^6 ≈ 2^20)
MAX_TTL_SECONDS = 600
DISPATCHED_METHODS = {Method.EMAIL_OTP, Method.SMS_OTP}
ANSWERED_BY_RECIPIENT = {Method.PUSH, Method.MANAGER_ATTESTATION}
OPEN_CHALLENGE_STATES = (ChallengeState.QUEUED, ChallengeState.SENT)
_CODE_SHAPE = re.compile(r"^[A-Za-z0-9]{1,16}$")


def _pick_device(case: VerificationCase, method: Method, device_id: str | None, now: Any) -> Device:
    """The subject's own factor for `method`: the one named, or the first that counts.
    Factors younger than the tier's minimum age do not count (SIM-swap defence)."""
    requirements = requirements_of(case)
    candidates = [device for _, device in factors_of(case.subject, method)]
    if device_id:
        candidates = [device for device in candidates if device.persistent_id == device_id]
        if not candidates:
            raise BadRequest(
                f"{case.subject.get_username()} has no such {method} factor", code="unknown_device"
            )
    if not candidates:
        raise BadRequest(f"{case.subject.get_username()} has no {method} factor enrolled", code="no_factor")
    used = set(case.challenges.filter(state=ChallengeState.PASSED).values_list("device_id", flat=True))
    for device in candidates:
        usable_from = factor_usable_from(device, case.subject, requirements.min_factor_age_days, now)
        if device.persistent_id in used:
            continue
        if usable_from is not None and usable_from <= now:
            return device
    if all(device.persistent_id in used for device in candidates):
        raise BadRequest("this factor has already passed; a different factor is needed", code="factor_used")
    raise BadRequest(
        f"the {method} factor is younger than {requirements.min_factor_age_days} day(s) and does not count",
        code="factor_too_new",
    )


def _manager_device(case: VerificationCase, manager: Any, now: Any) -> Device:
    """The manager answers on their own push factor (their logged-in portal page),
    held to the same age rule as the subject's factors."""
    min_age = requirements_of(case).min_factor_age_days
    for device in PushDevice.objects.filter(user=manager, confirmed=True).order_by("id"):
        usable_from = factor_usable_from(device, manager, min_age, now)
        if usable_from is not None and usable_from <= now:
            return device
    raise BadRequest(
        f"the manager {manager.get_username()} has no push factor older than {min_age} day(s) to attest on",
        code="manager_no_factor",
    )


def _check_can_challenge(case: VerificationCase, method: Method, now: Any) -> None:
    requirements = requirements_of(case)
    if case.state != CaseState.OPEN:
        raise WrongState(f"the case is {case.state}; challenges need an open case")
    if case.expires_at < now:
        raise WrongState("the case has expired", code="expired")
    if method not in requirements.allowed_methods:
        allowed = ", ".join(sorted(requirements.allowed_methods))
        raise BadRequest(
            f"{method} is not allowed at this tier (allowed: {allowed})", code="method_not_allowed"
        )
    if requirements.require_distinct_channel and method in SAME_CHANNEL_METHODS[Channel(case.channel)]:
        raise BadRequest(
            f"{method} travels over the channel the request came in on ({case.channel})", code="same_channel"
        )
    if subject_on_hold(case.subject, now):
        raise WrongState(
            "the subject reported an impersonation attempt; challenges are on hold", code="subject_on_hold"
        )


def challenge_create(
    *, case: VerificationCase, method: str, actor: Any, device_id: str | None = None
) -> Challenge:
    """1. Lock the case; only its agent asks, only while it is open.
    2. Refuse a method the tier does not allow or one over the contact channel.
    3. Pick the recipient's factor (the manager's for an attestation).
    4. Push: rate-limited per subject (push bombing), with a number to read out.
    5. Email/SMS codes are generated and sent by the worker after commit.
    A refusal is audited as `challenge_refused`."""
    with refusals_audited("challenge_refused", case, actor=actor, data={"method": str(method)[:40]}):
        return _challenge_create(case=case, method=method, actor=actor, device_id=device_id)


@transaction.atomic
def _challenge_create(*, case: VerificationCase, method: str, actor: Any, device_id: str | None) -> Challenge:
    case = lock_case(case)
    if actor.pk != case.agent_id:
        raise NotAllowed("only the agent who opened the case may challenge")
    try:
        chosen = Method(method)
    except ValueError as exc:
        raise BadRequest(f"unknown method {method!r}", code="unknown_method") from exc
    now = timezone.now()
    _check_can_challenge(case, chosen, now)
    requirements = requirements_of(case)
    recipient: Any = case.subject
    if chosen == Method.MANAGER_ATTESTATION:
        recipient = case.subject.manager
        if recipient is None or not recipient.is_active:
            raise BadRequest("the subject has no active manager of record to attest", code="no_manager")
        if recipient.pk == case.agent_id:
            raise NotAllowed(
                "the agent cannot attest for the caller they are verifying", code="self_approval"
            )
        device_ref = _manager_device(case, recipient, now).persistent_id
    else:
        device_ref = _pick_device(case, chosen, device_id, now).persistent_id
    if chosen == Method.PUSH:
        sent = Challenge.objects.filter(
            case__subject=case.subject, method=Method.PUSH, created_at__gte=now - timedelta(minutes=10)
        ).count()
        if sent >= settings.VERIFICATION_PUSH_LIMIT_PER_10_MIN:
            raise Throttled(f"{sent} pushes to this subject in 10 minutes; wait before asking again")
    ttl = min(requirements.challenge_ttl_seconds, MAX_TTL_SECONDS)
    immediate = chosen not in DISPATCHED_METHODS
    challenge = Challenge.objects.create(
        case=case,
        method=chosen,
        device_id=device_ref,
        recipient=recipient,
        max_attempts=requirements.max_attempts,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        state=ChallengeState.SENT if immediate else ChallengeState.QUEUED,
        sent_at=now if immediate else None,
        match_number=f"{100 + secrets.randbelow(900)}" if chosen == Method.PUSH else "",
    )
    case_event(
        "challenge_created",
        case,
        actor=actor,
        data={"challenge": challenge.pk, "method": chosen, "recipient": recipient.get_username()},
    )
    if chosen in ANSWERED_BY_RECIPIENT:
        what = (
            "attest that the caller is" if chosen == Method.MANAGER_ATTESTATION else "approve a request for"
        )
        notice_to(
            recipient,
            headline="A verification is waiting for you",
            message=f"The service desk asks you to {what} {case.subject.get_username()} "
            f"({case.action}, ticket {case.ticket or 'none'}).",
            link=f"{settings.PORTAL_URL}/me/",
            link_label="Open your Vigil page",
        )
    if not immediate:
        enqueue_on_commit("challenge_dispatch", challenge.pk)
    return challenge


def attempts_left(challenge: Challenge) -> int:
    if challenge.state == ChallengeState.FAILED:
        return 0
    return max(challenge.max_attempts - challenge.attempts, 0)


def public_state(challenge: Challenge) -> str:
    """The state an answer reports: a failed challenge is `locked` (by its attempt
    limit, the subject's failure limit or a hold on the subject)."""
    if challenge.state == ChallengeState.FAILED:
        return "locked"
    return str(challenge.state)


def _verify(challenge: Challenge, code: str) -> bool:
    """Check the code against the one device chosen for this challenge, never a search
    across the subject's devices. TOTP refuses a replayed time step (django-otp keeps last_t)."""
    if challenge.method in DISPATCHED_METHODS:
        return challenge.code_matches(code)
    device = Device.from_persistent_id(challenge.device_id, for_verify=True)
    if device is None or not isinstance(device, METHOD_DEVICE[Method(challenge.method)]):
        return False
    return bool(device.verify_token(code))


def challenge_expire_if_due(challenge: Challenge, now: Any) -> bool:
    if challenge.state in OPEN_CHALLENGE_STATES and challenge.expires_at <= now:
        challenge.state = ChallengeState.EXPIRED
        challenge.save(update_fields=["state"])
        case_event(
            "challenge_expired", challenge.case, outcome=Outcome.FAILURE, data={"challenge": challenge.pk}
        )
        return True
    return False


def challenge_answer(*, challenge: Challenge, code: str, actor: Any) -> Challenge:
    """1. A locked challenge is final: an answer to it is checked like any other, then
       refused from one narrow read, without a row lock or a write, so a flood of
       guesses at locked challenges holds up no one.
    2. Otherwise lock the challenge; only the case's agent types in what the caller reads.
    3. Expired → expired; already locked → locked, no new information.
    4. A subject on hold: the challenge locks, whatever was typed.
    5. Verify against the chosen device only; a pass is single use.
    6. A wrong code spends an attempt; at the limit the challenge locks and the
       case fails; too many failures for the subject anywhere escalates it."""
    final = Challenge.objects.filter(pk=challenge.pk, state=ChallengeState.FAILED)
    locked = final.values_list("case__agent_id", "attempts").first()
    if locked is None:
        return _challenge_answer(challenge_id=challenge.pk, code=code, actor=actor)
    agent_id, challenge.attempts = locked
    _check_answer(challenge, agent_id=agent_id, code=code, actor=actor)
    challenge.state = ChallengeState.FAILED
    return challenge


def _check_answer(challenge: Challenge, *, agent_id: int, code: str, actor: Any) -> None:
    if actor.pk != agent_id:
        raise NotAllowed("only the agent who opened the case may answer its challenges")
    if challenge.method in ANSWERED_BY_RECIPIENT:
        raise BadRequest(
            "this challenge is answered on the recipient's own device", code="answered_elsewhere"
        )
    if not isinstance(code, str) or not _CODE_SHAPE.match(code.strip()):
        raise BadRequest("the code must be 1 to 16 letters or digits", code="bad_code")


@transaction.atomic
def _challenge_answer(*, challenge_id: int, code: str, actor: Any) -> Challenge:
    found = lock_challenge(challenge_id)
    assert found is not None  # the caller loaded it
    challenge, case = found, found.case
    _check_answer(challenge, agent_id=case.agent_id, code=code, actor=actor)
    now = timezone.now()
    if challenge_expire_if_due(challenge, now) or public_state(challenge) == "locked":
        return challenge
    if case.state != CaseState.OPEN:
        raise WrongState(f"the case is {case.state}; answers need an open case", code="case_closed")
    # A claimed challenge holds its code's hash before the message leaves: the person may
    # read the code back before the worker records the send, and that answer counts.
    in_flight = challenge.state == ChallengeState.QUEUED and bool(challenge.secret_hash)
    if challenge.state == ChallengeState.QUEUED and not in_flight:
        raise WrongState("the code has not been sent yet", code="not_sent")
    if challenge.state != ChallengeState.SENT and not in_flight:
        raise WrongState(f"the challenge is already {challenge.state}")
    if subject_on_hold(case.subject, now):
        challenge_lock_held(challenge, actor=actor)
        return challenge
    if _verify(challenge, code.strip()):
        challenge_pass(challenge, actor=actor, now=now)
    else:
        challenge_wrong_answer(challenge, actor=actor)
    return challenge


def challenge_pass(challenge: Challenge, *, actor: Any, now: Any) -> None:
    """A passed challenge is spent (its hash dropped); the case may now be verified.
    The caller holds the case and challenge locks."""
    challenge.state, challenge.answered_at, challenge.secret_hash = ChallengeState.PASSED, now, ""
    challenge.save(update_fields=["state", "answered_at", "secret_hash"])
    case_event(
        "challenge_passed",
        challenge.case,
        actor=actor,
        data={"challenge": challenge.pk, "method": challenge.method},
    )
    case_evaluate(challenge.case)


def challenge_wrong_answer(challenge: Challenge, *, actor: Any, data: dict[str, Any] | None = None) -> None:
    """Spend one attempt (NIST SP 800-63B 5.2.2). At the limit the challenge locks
    and the case fails. Wrong answers for the subject are also counted across every
    agent and case: past the limit (far below NIST's 100) the challenge locks, the
    case is escalated, the subject is put on hold (their other open challenges lock
    when next answered, and no new one is sent) and security admins are told.
    The caller holds the case and challenge locks."""
    case, now = challenge.case, timezone.now()
    challenge.attempts += 1
    challenge.save(update_fields=["attempts"])
    failures = subject_recent_failures(case.subject, now)
    over_limit = failures >= settings.VERIFICATION_SUBJECT_FAILURE_LIMIT
    locked = over_limit or challenge.attempts >= challenge.max_attempts
    if locked:
        challenge.state, challenge.secret_hash = ChallengeState.FAILED, ""
        challenge.save(update_fields=["state", "secret_hash"])
    case_event(
        "challenge_failed",
        case,
        outcome=Outcome.FAILURE,
        actor=actor,
        data={"challenge": challenge.pk, "attempts": challenge.attempts, "locked": locked, **(data or {})},
    )
    if over_limit:
        until = subject_hold(
            case.subject,
            minutes=settings.VERIFICATION_FAILURE_HOLD_MINUTES,
            reason=f"{failures} wrong answers in 24 hours",
            now=now,
        )
        case_fail(case, reason="too many failed answers for this subject", state=CaseState.ESCALATED)
        notice_security(
            headline=f"Repeated failures for {case.subject.get_username()}",
            message=f"{failures} wrong answers for this subject in 24 hours; case {case.pk} "
            f"({case.action}, agent {case.agent.get_username()}) is escalated. Challenges to "
            f"{case.subject.get_username()} are on hold until {until:%Y-%m-%d %H:%M} UTC.",
        )
    elif locked:
        case_fail(case, reason=f"challenge {challenge.pk} locked after {challenge.attempts} attempts")


def challenge_lock_held(challenge: Challenge, *, actor: Any) -> None:
    """An answer while the subject is on hold (an impersonation report, or too many wrong
    answers): nothing passes, whatever was typed; the challenge locks without spending an
    attempt and its case goes to security. The caller holds the case and challenge locks."""
    challenge.state, challenge.secret_hash = ChallengeState.FAILED, ""
    challenge.save(update_fields=["state", "secret_hash"])
    case_event(
        "challenge_locked",
        challenge.case,
        outcome=Outcome.BLOCKED,
        actor=actor,
        data={"challenge": challenge.pk, "reason": "the subject is on hold"},
    )
    case_fail(challenge.case, reason="answered while the subject is on hold", state=CaseState.ESCALATED)


def _message_context(challenge: Challenge, code: str) -> dict[str, Any]:
    case = challenge.case
    return {
        "subject_name": case.subject.get_full_name() or case.subject.get_username(),
        "action_name": case.action.replace("_", " "),
        "agent_name": case.agent.get_username(),
        "ticket": case.ticket,
        "code": code,
        "ttl_minutes": max(1, round((challenge.expires_at - timezone.now()).total_seconds() / 60)),
        "report_url": f"{settings.PORTAL_URL}/me/",
    }


def challenge_dispatch(*, challenge_id: int) -> bool:
    """Send one email/SMS code; safe to run twice or concurrently.

    1. Make a fresh code and claim the challenge with one conditional update: only
       a queued, live challenge of an open case that no live worker holds. The claim
       stores the code's hash (never the code) and a lease.
    2. Deliver outside any transaction, so no row lock waits on SMTP or a gateway.
    3. Mark it sent only if the claim still stands (the case may have closed).
    A re-dispatch makes a new code and the earlier one stops working: the code
    exists in clear only in this function and in the message.
    Returns True when sent; on failure records it and raises DeliveryError to retry."""
    now = timezone.now()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    digest = Challenge(pk=challenge_id).code_digest(code)
    claimed = Challenge.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        pk=challenge_id,
        state=ChallengeState.QUEUED,
        expires_at__gt=now,
        case__state=CaseState.OPEN,
    ).update(
        secret_hash=digest, claimed_until=now + DELIVERY_LEASE, delivery_attempts=F("delivery_attempts") + 1
    )
    if not claimed:
        return False
    challenge = Challenge.objects.select_related("case__subject", "case__agent").get(pk=challenge_id)
    try:
        _deliver(challenge, code)
    except DeliveryError as error:
        error_text = str(error)[:200]
        with transaction.atomic():
            if _still_claimed(challenge_id, digest):
                # The hash goes too: a code that may not have arrived must not stay guessable.
                Challenge.objects.filter(pk=challenge_id).update(
                    delivery_error=error_text, secret_hash="", claimed_until=None
                )
            case_event(
                "challenge_delivery_failed",
                challenge.case,
                outcome=Outcome.FAILURE,
                actor="system",
                data={"challenge": challenge_id, "error": error_text, "attempt": challenge.delivery_attempts},
            )
        raise DeliveryError(error_text) from error
    with transaction.atomic():
        sent = _still_claimed(challenge_id, digest)
        if sent:
            Challenge.objects.filter(pk=challenge_id).update(
                state=ChallengeState.SENT, sent_at=timezone.now(), delivery_error="", claimed_until=None
            )
            case_event(
                "challenge_sent",
                challenge.case,
                actor="system",
                data={"challenge": challenge_id, "method": challenge.method},
            )
    return sent


def _still_claimed(challenge_id: int, digest: str) -> bool:
    """Lock case then challenge (the lock order of `lock_case`) and check that the
    claim made with `digest` still stands: the case may have closed meanwhile."""
    locked = lock_challenge(challenge_id)
    return bool(locked and locked.state == ChallengeState.QUEUED and locked.secret_hash == digest)


def _deliver(challenge: Challenge, code: str) -> None:
    """Over the chosen factor: the SMS factor's own number, the email factor's own
    address (or the account's, which is what an email factor without one means)."""
    device = Device.from_persistent_id(challenge.device_id)
    if device is None:
        raise DeliveryError("the factor was removed since the challenge was made")
    context = _message_context(challenge, code)
    if challenge.method == Method.EMAIL_OTP:
        address = getattr(device, "email", None) or device.user.email
        email_send(to=address, template="challenge", context=context)
    else:
        assert isinstance(device, SMSDevice)  # METHOD_DEVICE maps sms_otp to SMSDevice
        number = device.number
        sms_send(
            to=number,
            body=f"Vigil code {code} for {context['action_name']} (agent {context['agent_name']}, "
            f"ticket {context['ticket'] or 'none'}). Not you? Do not share it; report at "
            f"{context['report_url']}",
        )


def challenges_sweep(now: Any = None) -> dict[str, int]:
    """Beat: expire what is past due; re-dispatch what never went out."""
    now = now or timezone.now()
    expired = 0
    for challenge in Challenge.objects.filter(state__in=OPEN_CHALLENGE_STATES, expires_at__lte=now).only(
        "pk"
    ):
        with transaction.atomic():
            locked = lock_challenge(challenge.pk)
            expired += bool(locked and challenge_expire_if_due(locked, now))
    stuck = list(
        Challenge.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
            state=ChallengeState.QUEUED,
            case__state=CaseState.OPEN,
            created_at__lte=now - timedelta(seconds=settings.VERIFICATION_REDISPATCH_AFTER_SECONDS),
        ).values_list("pk", flat=True)
    )
    from verification.tasks import challenge_dispatch

    for challenge_id in stuck:
        challenge_dispatch.delay(challenge_id)
    return {"expired": expired, "redispatched": len(stuck)}
