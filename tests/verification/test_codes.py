"""One-time codes: made by the worker, kept only hashed and bound to their challenge,
compared in constant time, single use, short-lived, with bounded attempts
(NIST SP 800-63B 5.1.3, 5.2.2)."""

import hashlib
import hmac
import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from portal.roles import Role
from tests.factories import UserFactory
from tests.otp import current_token
from verification import challenges as challenges_module
from verification.challenges import (
    attempts_left,
    challenge_answer,
    challenge_create,
    challenge_dispatch,
    challenges_sweep,
    public_state,
)
from verification.channels import DeliveryError
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.factors import factor_enroll
from verification.models import AuthenticatorDevice, CaseState, Challenge, ChallengeState, VerificationCase

pytestmark = pytest.mark.django_db


def sent_sms_code(challenge, sms_outbox) -> str:
    assert challenge_dispatch(challenge_id=challenge.pk) is True
    return re.search(r"Vigil code (\d{6})", sms_outbox()[-1]["body"]).group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def sms_challenge(make_case, agent, enrolled, sms_outbox):
    return challenge_create(case=make_case(), method="sms_otp", actor=agent)


def test_the_code_is_six_digits_kept_only_as_a_keyed_hash_bound_to_its_challenge(sms_challenge, sms_outbox):
    code = sent_sms_code(sms_challenge, sms_outbox)
    stored = Challenge.objects.get(pk=sms_challenge.pk)
    expected = hmac.new(
        django_settings.SECRET_KEY.encode(), f"{stored.pk}:{code}".encode(), hashlib.sha256
    ).hexdigest()
    assert stored.secret_hash == expected and code not in stored.secret_hash
    assert not Challenge(pk=stored.pk + 1, secret_hash=stored.secret_hash).code_matches(code)


def test_the_message_says_what_who_which_ticket_and_how_to_report(sms_challenge, sms_outbox, subject):
    sent_sms_code(sms_challenge, sms_outbox)
    [message] = sms_outbox()
    assert message["to"] == subject.phone
    assert "password reset" in message["body"] and "agent" in message["body"] and "INC-1" in message["body"]
    assert "/me/" in message["body"]


def test_a_code_of_one_challenge_does_not_open_another(make_case, agent, enrolled, sms_outbox):
    first = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    second = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    first_code, second_code = sent_sms_code(first, sms_outbox), sent_sms_code(second, sms_outbox)
    if first_code != second_code:
        assert public_state(challenge_answer(challenge=second, code=first_code, actor=agent)) == "sent"
    assert public_state(challenge_answer(challenge=second, code=second_code, actor=agent)) == "passed"


def test_a_right_code_passes_once(sms_challenge, sms_outbox, agent):
    code = sent_sms_code(sms_challenge, sms_outbox)
    passed = challenge_answer(challenge=sms_challenge, code=f"  {code} ", actor=agent)
    assert passed.state == ChallengeState.PASSED and passed.secret_hash == ""
    assert VerificationCase.objects.get(pk=sms_challenge.case_id).state == CaseState.VERIFIED
    with pytest.raises(WrongState):
        challenge_answer(challenge=sms_challenge, code=code, actor=agent)


def test_wrong_codes_spend_attempts_then_lock_and_fail_the_case(sms_challenge, sms_outbox, agent):
    code = sent_sms_code(sms_challenge, sms_outbox)
    seen = []
    for _ in range(3):
        answered = challenge_answer(challenge=sms_challenge, code=other_code(code), actor=agent)
        seen.append((public_state(answered), attempts_left(answered)))
    assert seen == [("sent", 2), ("sent", 1), ("locked", 0)]
    assert public_state(challenge_answer(challenge=sms_challenge, code=code, actor=agent)) == "locked"
    case = VerificationCase.objects.get(pk=sms_challenge.case_id)
    assert case.state == CaseState.FAILED and "locked after 3 attempts" in case.closed_reason
    failed = AuditEvent.objects.filter(verb="challenge_failed").order_by("seq")
    assert [e.data["locked"] for e in failed] == [False, False, True]
    assert AuditEvent.objects.filter(verb="case_failed", outcome="failure").count() == 1


def test_a_code_expires_with_its_challenge(sms_challenge, sms_outbox, agent, time_machine):
    code = sent_sms_code(sms_challenge, sms_outbox)
    time_machine.shift(timedelta(seconds=300))
    assert public_state(challenge_answer(challenge=sms_challenge, code=code, actor=agent)) == "expired"
    assert AuditEvent.objects.filter(verb="challenge_expired").count() == 1


def test_answers_need_a_sent_challenge_the_right_agent_and_a_code_shaped_code(
    make_case, agent, enrolled, sms_outbox
):
    case = make_case()
    queued = challenge_create(case=case, method="sms_otp", actor=agent)
    with pytest.raises(WrongState) as early:
        challenge_answer(challenge=queued, code="123456", actor=agent)
    assert early.value.code == "not_sent"
    sent_sms_code(queued, sms_outbox)
    for bad in ("", "12 34", "x" * 17, "12345;--"):
        with pytest.raises(BadRequest) as shape:
            challenge_answer(challenge=queued, code=bad, actor=agent)
        assert shape.value.code == "bad_code"
    other = UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT])
    with pytest.raises(NotAllowed):
        challenge_answer(challenge=queued, code="123456", actor=other)
    push = challenge_create(case=case, method="push", actor=agent)
    with pytest.raises(BadRequest) as elsewhere:
        challenge_answer(challenge=push, code=push.match_number, actor=agent)
    assert elsewhere.value.code == "answered_elsewhere"
    assert Challenge.objects.get(pk=queued.pk).attempts == 0


def test_totp_is_checked_on_the_chosen_device_only_and_a_step_is_not_replayed(
    make_case, agent, subject, time_machine
):
    from django.utils import timezone

    old = timezone.now() - timedelta(days=30)
    first = factor_enroll(user=subject, method="totp").device
    second = factor_enroll(user=subject, method="totp").device
    AuthenticatorDevice.objects.filter(user=subject).update(created_at=old)
    case = make_case(factors=2)
    challenge = challenge_create(case=case, method="totp", actor=agent, device_id=first.persistent_id)
    assert challenge_answer(challenge=challenge, code=current_token(second), actor=agent).state == "sent"
    time_machine.shift(timedelta(seconds=2))  # django-otp throttles a device briefly after a wrong code
    code = current_token(first)
    assert challenge_answer(challenge=challenge, code=code, actor=agent).state == "passed"
    again = challenge_create(case=make_case(), method="totp", actor=agent, device_id=first.persistent_id)
    assert challenge_answer(challenge=again, code=code, actor=agent).state == "sent"


def test_a_backup_code_works_once(make_case, agent, enrolled):
    code = enrolled["backup_codes"].secrets_to_show[0]
    first = challenge_create(case=make_case(), method="backup_code", actor=agent)
    assert challenge_answer(challenge=first, code=code, actor=agent).state == "passed"
    second = challenge_create(case=make_case(), method="backup_code", actor=agent)
    assert challenge_answer(challenge=second, code=code, actor=agent).state == "sent"


def test_failures_count_per_subject_across_agents_and_cases_and_escalate(
    make_case, agent, enrolled, settings, security_admin, run_on_commit
):
    settings.VERIFICATION_SUBJECT_FAILURE_LIMIT = 4
    other = UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT])
    first = challenge_create(case=make_case(max_attempts=5), method="backup_code", actor=agent)
    for _ in range(3):
        challenge_answer(challenge=first, code="wrong000", actor=agent)
    second_case = make_case(by=other, max_attempts=5)
    second = challenge_create(case=second_case, method="backup_code", actor=other)
    with run_on_commit():
        challenge_answer(challenge=second, code="wrong000", actor=other)
    second_case.refresh_from_db()
    assert second_case.state == CaseState.ESCALATED
    assert AuditEvent.objects.get(verb="case_escalated").outcome == "failure"
    assert any("Repeated failures" in m.subject for m in mail.outbox if security_admin.email in m.to)


def test_an_email_code_goes_to_the_email_factor_with_html_and_text(make_case, agent, subject, enrolled):
    challenge = challenge_create(case=make_case(channel="phone"), method="email_otp", actor=agent)
    assert challenge_dispatch(challenge_id=challenge.pk) is True
    [message] = mail.outbox
    assert message.to == [subject.email]
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    assert "If this was not you" in message.body and "INC-1" in message.body
    assert code in message.alternatives[0][0]
    assert challenge_answer(challenge=challenge, code=code, actor=agent).state == "passed"


# Dispatch ------------------------------------------------------------------


def test_dispatch_is_idempotent(sms_challenge, sms_outbox):
    assert challenge_dispatch(challenge_id=sms_challenge.pk) is True
    assert challenge_dispatch(challenge_id=sms_challenge.pk) is False
    assert len(sms_outbox()) == 1
    assert AuditEvent.objects.filter(verb="challenge_sent").count() == 1


def test_a_failed_delivery_is_recorded_for_the_agent_and_leaves_no_usable_code(
    sms_challenge, settings, tmp_path, agent
):
    settings.SMS_FILE_PATH = str(tmp_path / "no-such-dir" / "sms.jsonl")
    with pytest.raises(DeliveryError):
        challenge_dispatch(challenge_id=sms_challenge.pk)
    stored = Challenge.objects.get(pk=sms_challenge.pk)
    assert stored.state == ChallengeState.QUEUED and stored.secret_hash == "" and stored.claimed_until is None
    assert "SMS file" in stored.delivery_error and stored.delivery_attempts == 1
    event = AuditEvent.objects.get(verb="challenge_delivery_failed")
    assert event.subject == sms_challenge.case.subject.username and event.target_id == str(
        sms_challenge.case_id
    )


def test_a_worker_that_died_mid_send_is_replaced_after_its_lease_with_a_fresh_code(
    sms_challenge, sms_outbox, monkeypatch, time_machine, agent
):
    sent = []

    def die_after_sending(challenge, code):
        sent.append(code)
        raise SystemExit("worker killed")

    monkeypatch.setattr(challenges_module, "_deliver", die_after_sending)
    with pytest.raises(SystemExit):
        challenge_dispatch(challenge_id=sms_challenge.pk)
    monkeypatch.undo()
    assert challenge_dispatch(challenge_id=sms_challenge.pk) is False
    time_machine.shift(timedelta(seconds=61))
    fresh = sent_sms_code(sms_challenge, sms_outbox)
    if fresh != sent[0]:
        assert challenge_answer(challenge=sms_challenge, code=sent[0], actor=agent).state == "sent"
    assert challenge_answer(challenge=sms_challenge, code=fresh, actor=agent).state == "passed"


def test_nothing_is_sent_for_a_closed_case_or_an_expired_challenge(
    make_case, agent, enrolled, sms_outbox, time_machine
):
    from verification.cases import case_cancel

    case = make_case()
    cancelled = challenge_create(case=case, method="sms_otp", actor=agent)
    case_cancel(case=case, actor=agent, reason="hung up")
    late = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    time_machine.shift(timedelta(seconds=301))
    assert challenge_dispatch(challenge_id=cancelled.pk) is False
    assert challenge_dispatch(challenge_id=late.pk) is False
    assert challenge_dispatch(challenge_id=999_999) is False
    assert sms_outbox() == []


def test_the_sweeper_expires_stale_challenges_and_resends_stuck_ones(
    make_case, agent, enrolled, sms_outbox, time_machine
):
    stuck = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    challenge_create(case=make_case(), method="totp", actor=agent)
    time_machine.shift(timedelta(seconds=10))
    assert challenges_sweep() == {"expired": 0, "redispatched": 0}
    time_machine.shift(timedelta(seconds=25))
    assert challenges_sweep() == {"expired": 0, "redispatched": 1}
    assert Challenge.objects.get(pk=stuck.pk).state == ChallengeState.SENT and len(sms_outbox()) == 1
    time_machine.shift(timedelta(seconds=300))
    assert challenges_sweep() == {"expired": 2, "redispatched": 0}
    assert set(Challenge.objects.values_list("state", flat=True)) == {ChallengeState.EXPIRED}
    assert AuditEvent.objects.filter(verb="challenge_expired").count() == 2


def test_a_broker_outage_does_not_fail_the_request_and_the_sweeper_catches_up(
    make_case, agent, enrolled, sms_outbox, monkeypatch, run_on_commit, time_machine
):
    from kombu.exceptions import OperationalError

    from verification import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.challenge_dispatch, "delay", broker_down)
    with run_on_commit():
        challenge = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    assert Challenge.objects.get(pk=challenge.pk).state == ChallengeState.QUEUED and sms_outbox() == []
    monkeypatch.undo()
    time_machine.shift(timedelta(seconds=31))
    challenges_sweep()
    assert Challenge.objects.get(pk=challenge.pk).state == ChallengeState.SENT and len(sms_outbox()) == 1


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(guesses=st.lists(st.text(alphabet="0123456789", min_size=1, max_size=8), min_size=1, max_size=6))
def test_no_sequence_of_wrong_answers_passes_a_challenge(
    make_case, agent, enrolled, sms_outbox, settings, guesses
):
    settings.VERIFICATION_SUBJECT_FAILURE_LIMIT = 10_000
    case = make_case(max_attempts=10)
    challenge = challenge_create(case=case, method="sms_otp", actor=agent)
    code = sent_sms_code(challenge, sms_outbox)
    for guess in guesses:
        if guess == code:
            continue
        answered = challenge_answer(challenge=challenge, code=guess, actor=agent)
        assert answered.state != ChallengeState.PASSED
    assert Challenge.objects.get(pk=challenge.pk).state != ChallengeState.PASSED
