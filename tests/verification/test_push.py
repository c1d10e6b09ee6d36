"""Push with number matching and manager attestation, answered by the recipient."""

from datetime import timedelta

import pytest
from django.core import mail

from audit.models import AuditEvent
from verification.challenges import attempts_left, challenge_create, public_state
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import CaseState, Challenge, ChallengeState, SubjectHold, VerificationCase
from verification.push import push_decide, push_pending_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def push(make_case, agent, enrolled):
    return challenge_create(case=make_case(), method="push", actor=agent)


def wrong(number: str) -> str:
    return f"{(int(number) - 99) % 900 + 100}"


def case_of(challenge) -> VerificationCase:
    return VerificationCase.objects.get(pk=challenge.case_id)


def test_the_subject_sees_what_is_asked_but_never_the_number(push, subject, outsider):
    [pending] = push_pending_for(subject)
    assert pending.pk == push.pk
    assert (pending.case.action, pending.case.agent.username, pending.case.ticket) == (
        "password_reset",
        "agent",
        "INC-1",
    )
    assert list(push_pending_for(outsider)) == []


def test_pending_lists_only_live_challenges_of_open_cases(push, subject, time_machine):
    time_machine.shift(timedelta(seconds=301))
    assert list(push_pending_for(subject)) == []


def test_the_typed_number_approves_and_verifies_the_case(push, subject):
    answered = push_decide(challenge=push, user=subject, decision="approve", number=f" {push.match_number} ")
    assert answered.state == ChallengeState.PASSED
    assert case_of(push).state == CaseState.VERIFIED
    assert AuditEvent.objects.get(verb="challenge_passed").actor == subject.username


def test_a_wrong_number_spends_an_attempt_and_the_limit_locks_the_push(push, subject):
    states = []
    for _ in range(3):
        answered = push_decide(
            challenge=push, user=subject, decision="approve", number=wrong(push.match_number)
        )
        states.append((public_state(answered), attempts_left(answered)))
    assert states == [("sent", 2), ("sent", 1), ("locked", 0)]
    assert case_of(push).state == CaseState.FAILED
    assert AuditEvent.objects.filter(verb="challenge_failed", data__wrong_number=True).count() == 3


def test_wrong_numbers_count_towards_the_subjects_failure_limit(push, subject, settings):
    settings.VERIFICATION_SUBJECT_FAILURE_LIMIT = 2
    for _ in range(2):
        push_decide(challenge=push, user=subject, decision="approve", number=wrong(push.match_number))
    assert case_of(push).state == CaseState.ESCALATED


def test_an_empty_number_is_a_wrong_number(push, subject):
    assert push_decide(challenge=push, user=subject, decision="approve").attempts == 1


def test_deny_fails_the_case(push, subject):
    assert push_decide(challenge=push, user=subject, decision="deny").state == ChallengeState.DENIED
    assert case_of(push).state == CaseState.FAILED
    assert AuditEvent.objects.get(verb="challenge_denied").outcome == "failure"


def test_report_cancels_holds_the_subject_and_tells_security(
    push, subject, security_admin, make_case, agent, settings, time_machine, run_on_commit
):
    settings.VERIFICATION_REPORT_HOLD_MINUTES = 30
    with run_on_commit():
        answered = push_decide(challenge=push, user=subject, decision="report")
    assert answered.state == ChallengeState.REPORTED
    case = case_of(push)
    assert case.state == CaseState.CANCELLED and case.closed_reason == "reported: not on a call"
    event = AuditEvent.objects.get(verb="push_reported")
    assert event.outcome == "blocked" and event.data["agent"] == "agent"
    [alert] = [m for m in mail.outbox if security_admin.email in m.to]
    assert "Impersonation reported" in alert.subject and "INC-1" in alert.body
    assert SubjectHold.objects.filter(subject=subject).count() == 1
    with pytest.raises(WrongState):
        challenge_create(case=make_case(), method="totp", actor=agent)
    time_machine.shift(timedelta(minutes=31))
    assert challenge_create(case=make_case(), method="totp", actor=agent).state == ChallengeState.SENT


def test_only_the_recipient_answers_and_only_with_a_known_decision(push, subject, outsider, agent):
    with pytest.raises(NotAllowed):
        push_decide(challenge=push, user=outsider, decision="approve", number=push.match_number)
    with pytest.raises(NotAllowed):
        push_decide(challenge=push, user=agent, decision="approve", number=push.match_number)
    with pytest.raises(BadRequest) as bad:
        push_decide(challenge=push, user=subject, decision="maybe")
    assert bad.value.code == "bad_decision"
    assert Challenge.objects.get(pk=push.pk).state == ChallengeState.SENT


def test_a_code_challenge_is_not_answered_as_a_push(make_case, agent, enrolled, subject):
    totp = challenge_create(case=make_case(), method="totp", actor=agent)
    with pytest.raises(NotAllowed):
        push_decide(challenge=totp, user=subject, decision="approve")


def test_an_answered_or_expired_push_cannot_be_answered_again(push, subject, time_machine, make_case, agent):
    push_decide(challenge=push, user=subject, decision="deny")
    with pytest.raises(WrongState):
        push_decide(challenge=push, user=subject, decision="approve", number=push.match_number)
    late = challenge_create(case=make_case(), method="push", actor=agent)
    time_machine.shift(timedelta(seconds=300))
    assert (
        push_decide(challenge=late, user=subject, decision="approve", number=late.match_number).state
        == "expired"
    )
    with pytest.raises(WrongState):
        push_decide(challenge=late, user=subject, decision="report")


def test_a_push_left_over_when_the_case_is_verified_expires(make_case, agent, enrolled, subject):
    from tests.otp import current_token
    from verification.challenges import challenge_answer

    case = make_case()
    leftover = challenge_create(case=case, method="push", actor=agent)
    totp = challenge_create(case=case, method="totp", actor=agent)
    challenge_answer(challenge=totp, code=current_token(enrolled["totp"].device), actor=agent)
    assert Challenge.objects.get(pk=leftover.pk).state == ChallengeState.EXPIRED
    with pytest.raises(WrongState):
        push_decide(challenge=leftover, user=subject, decision="approve", number=leftover.match_number)


def test_the_manager_attests_without_a_number_and_the_case_needs_both_steps(
    make_case, agent, manager, subject, enrolled
):
    from tests.otp import current_token
    from verification.challenges import challenge_answer

    case = make_case(methods=["totp", "manager_attestation"], manager_attestation=True)
    attestation = challenge_create(case=case, method="manager_attestation", actor=agent)
    assert list(push_pending_for(manager)) == [attestation]
    with pytest.raises(NotAllowed):
        push_decide(challenge=attestation, user=subject, decision="approve")
    assert push_decide(challenge=attestation, user=manager, decision="approve").state == "passed"
    assert case_of(attestation).state == CaseState.OPEN
    totp = challenge_create(case=case, method="totp", actor=agent)
    challenge_answer(challenge=totp, code=current_token(enrolled["totp"].device), actor=agent)
    assert case_of(attestation).state == CaseState.VERIFIED
