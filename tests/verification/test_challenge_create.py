"""Asking for a proof: which method, over which factor, to whom, how often."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from portal.roles import Role
from tests.factories import UserFactory
from verification.challenges import challenge_create
from verification.errors import BadRequest, NotAllowed, Throttled, WrongState
from verification.factors import factor_enroll
from verification.models import ChallengeState, PushDevice, SubjectHold

pytestmark = pytest.mark.django_db


def refused(exc_type, code, **kwargs):
    with pytest.raises(exc_type) as caught:
        challenge_create(**kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


def test_only_the_cases_agent_asks_and_a_refusal_is_audited(make_case, enrolled):
    case = make_case()
    other = UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT])
    error = refused(NotAllowed, "permission_denied", case=case, method="totp", actor=other)
    assert error.status == 403
    event = AuditEvent.objects.get(verb="challenge_refused")
    assert event.actor == "agent2" and event.outcome == "blocked" and event.data["method"] == "totp"
    assert not case.challenges.exists()


def test_unknown_and_disallowed_methods_are_400(make_case, agent, enrolled):
    case = make_case(methods=["totp", "push"])
    refused(BadRequest, "unknown_method", case=case, method="telepathy", actor=agent)
    error = refused(BadRequest, "method_not_allowed", case=case, method="sms_otp", actor=agent)
    assert "allowed: push, totp" in str(error)


@pytest.mark.parametrize(
    ("channel", "method"), [("email", "email_otp"), ("phone", "sms_otp"), ("portal", "push")]
)
def test_with_a_distinct_channel_nothing_goes_back_over_the_contact_channel(
    make_case, agent, enrolled, channel, method
):
    strict = make_case(channel=channel)
    refused(BadRequest, "same_channel", case=strict, method=method, actor=agent)
    relaxed = make_case(channel=channel, require_distinct_channel=False)
    assert challenge_create(case=relaxed, method=method, actor=agent).method == method


@pytest.mark.parametrize("channel", ["chat", "walk_in"])
def test_chat_and_walk_in_do_not_rule_out_any_method(make_case, agent, enrolled, channel):
    case = make_case(channel=channel)
    for method in ("push", "sms_otp", "email_otp", "totp"):
        assert challenge_create(case=case, method=method, actor=agent).case_id == case.pk


def test_a_subject_without_the_factor_or_with_an_unknown_device_is_400(make_case, agent, subject, enrolled):
    PushDevice.objects.filter(user=subject).delete()
    case = make_case()
    refused(BadRequest, "no_factor", case=case, method="push", actor=agent)
    refused(
        BadRequest,
        "unknown_device",
        case=case,
        method="totp",
        actor=agent,
        device_id="verification.authenticatordevice/999",
    )


def test_another_persons_device_cannot_be_named(make_case, agent, manager, enrolled):
    managers_push = PushDevice.objects.get(user=manager)
    case = make_case()
    refused(
        BadRequest,
        "unknown_device",
        case=case,
        method="push",
        actor=agent,
        device_id=managers_push.persistent_id,
    )


def test_a_factor_younger_than_the_minimum_age_cannot_be_challenged(make_case, agent, subject):
    factor_enroll(user=subject, method="totp")
    case = make_case(min_factor_age_days=7)
    error = refused(BadRequest, "factor_too_new", case=case, method="totp", actor=agent)
    assert "younger than 7 day(s)" in str(error)


def test_a_contact_change_restarts_the_age_of_factors_that_follow_the_profile(
    make_case, agent, subject, enrolled
):
    subject.contact_changed_at = timezone.now() - timedelta(hours=2)
    subject.save()
    case = make_case(channel="walk_in")
    refused(BadRequest, "factor_too_new", case=case, method="sms_otp", actor=agent)
    refused(BadRequest, "factor_too_new", case=case, method="email_otp", actor=agent)
    assert challenge_create(case=case, method="totp", actor=agent).method == "totp"


def test_a_factor_counts_once_per_case(make_case, agent, enrolled):
    from tests.otp import current_token
    from verification.challenges import challenge_answer

    case = make_case(factors=2)
    first = challenge_create(case=case, method="totp", actor=agent)
    challenge_answer(challenge=first, code=current_token(enrolled["totp"].device), actor=agent)
    refused(BadRequest, "factor_used", case=case, method="totp", actor=agent)


def test_the_challenge_takes_ttl_and_attempts_from_the_requirements_but_never_over_ten_minutes(
    make_case, agent, enrolled
):
    now = timezone.now()
    short = challenge_create(
        case=make_case(challenge_ttl_seconds=120, max_attempts=4), method="totp", actor=agent
    )
    assert short.expires_at == now + timedelta(seconds=120) and short.max_attempts == 4
    long = challenge_create(case=make_case(challenge_ttl_seconds=3600), method="totp", actor=agent)
    assert long.expires_at == now + timedelta(minutes=10)


def test_codes_by_message_wait_for_the_worker_and_app_methods_are_live_at_once(make_case, agent, enrolled):
    case = make_case(factors=2)
    states = {
        m: challenge_create(case=case, method=m, actor=agent).state for m in ("sms_otp", "email_otp", "totp")
    }
    assert states == {
        "sms_otp": ChallengeState.QUEUED,
        "email_otp": ChallengeState.QUEUED,
        "totp": ChallengeState.SENT,
    }


def test_only_a_push_carries_a_number_and_it_has_three_digits(make_case, agent, enrolled):
    case = make_case()
    push = challenge_create(case=case, method="push", actor=agent)
    totp = challenge_create(case=case, method="totp", actor=agent)
    assert push.match_number.isdigit() and 100 <= int(push.match_number) <= 999
    assert totp.match_number == ""


def test_pushes_to_one_subject_are_rate_limited_across_cases(
    make_case, agent, enrolled, settings, time_machine
):
    settings.VERIFICATION_PUSH_LIMIT_PER_10_MIN = 2
    challenge_create(case=make_case(), method="push", actor=agent)
    challenge_create(case=make_case(), method="push", actor=agent)
    error = refused(Throttled, "throttled", case=make_case(), method="push", actor=agent)
    assert error.status == 429
    assert AuditEvent.objects.filter(verb="challenge_refused", data__code="throttled").count() == 1
    assert challenge_create(case=make_case(), method="totp", actor=agent).method == "totp"
    time_machine.shift(timedelta(minutes=10, seconds=1))
    assert challenge_create(case=make_case(), method="push", actor=agent).method == "push"


def test_a_subject_on_hold_gets_no_challenge_until_the_hold_ends(
    make_case, agent, subject, enrolled, time_machine
):
    SubjectHold.objects.create(
        subject=subject, reason="reported", until=timezone.now() + timedelta(minutes=60)
    )
    refused(WrongState, "subject_on_hold", case=make_case(), method="totp", actor=agent)
    time_machine.shift(timedelta(minutes=61))
    assert challenge_create(case=make_case(), method="totp", actor=agent)


def test_a_case_past_its_deadline_takes_no_challenge(make_case, agent, enrolled, time_machine):
    case = make_case()
    time_machine.shift(timedelta(minutes=31))
    refused(WrongState, "expired", case=case, method="totp", actor=agent)


ATTESTATION = {"methods": ["totp", "manager_attestation"], "manager_attestation": True}


def test_manager_attestation_goes_to_the_manager_on_their_own_push_factor(
    make_case, agent, manager, enrolled, run_on_commit
):
    with run_on_commit():
        challenge = challenge_create(case=make_case(**ATTESTATION), method="manager_attestation", actor=agent)
    assert challenge.recipient == manager and challenge.state == ChallengeState.SENT
    assert challenge.device_id == PushDevice.objects.get(user=manager).persistent_id
    assert challenge.match_number == ""
    [notice] = [m for m in mail.outbox if manager.email in m.to]
    assert "attest" in notice.body and "subject" in notice.body


def test_a_demanded_attestation_is_allowed_even_if_the_tier_does_not_list_it(
    make_case, agent, manager, enrolled
):
    case = make_case(methods=["totp"], manager_attestation=True)
    assert challenge_create(case=case, method="manager_attestation", actor=agent).recipient == manager


def test_attestation_needs_an_active_manager_with_an_old_enough_push_factor(
    make_case, agent, subject, manager, enrolled
):
    PushDevice.objects.filter(user=manager).delete()
    refused(
        BadRequest,
        "manager_no_factor",
        case=make_case(**ATTESTATION),
        method="manager_attestation",
        actor=agent,
    )
    factor_enroll(user=manager, method="push")
    refused(
        BadRequest,
        "manager_no_factor",
        case=make_case(**ATTESTATION),
        method="manager_attestation",
        actor=agent,
    )
    manager.is_active = False
    manager.save()
    refused(
        BadRequest, "no_manager", case=make_case(**ATTESTATION), method="manager_attestation", actor=agent
    )
    subject.manager = None
    subject.save()
    refused(
        BadRequest, "no_manager", case=make_case(**ATTESTATION), method="manager_attestation", actor=agent
    )


def test_the_agent_cannot_attest_for_the_caller(make_case, subject, enrolled):
    manager_agent = UserFactory(username="desk.lead", is_staff=True, roles=[Role.AGENT, Role.MANAGER])
    subject.manager = manager_agent
    subject.save()
    case = make_case(by=manager_agent, **ATTESTATION)
    refused(NotAllowed, "self_approval", case=case, method="manager_attestation", actor=manager_agent)
