"""Cases through the service layer: who may open them, what they must demand, and
every transition of CONTRACT's case state machine, legal or not."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from tests.verification.conftest import DECISION
from verification.cases import case_cancel, case_escalate, cases_expire
from verification.challenges import challenge_create
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import CaseState, Challenge, ChallengeState, Purpose, VerificationCase
from verification.purposes import register_verified_handler

pytestmark = pytest.mark.django_db


def test_a_case_keeps_requirements_and_decision_and_is_audited_with_its_context(make_case, agent, subject):
    case = make_case(channel="phone", ticket="INC-42")
    assert case.state == CaseState.OPEN and case.tier_level == 2
    assert case.requirements["factors"] == 1 and case.decision["policy_version"] == "test-version"
    event = AuditEvent.objects.get(verb="case_opened")
    assert (event.actor, event.subject, event.tier, event.channel, event.action) == (
        agent.username,
        subject.username,
        2,
        "phone",
        "password_reset",
    )
    assert (event.target_type, event.target_id) == ("verification.verificationcase", str(case.pk))
    assert event.data["ticket"] == "INC-42" and event.data["reasons"] == DECISION["reasons"]


def test_only_agents_open_service_desk_cases_and_the_refusal_is_audited(make_case, outsider, subject):
    with pytest.raises(NotAllowed) as refused:
        make_case(by=outsider)
    assert refused.value.status == 403
    assert not VerificationCase.objects.exists()
    event = AuditEvent.objects.get(verb="case_refused")
    assert event.outcome == "blocked" and event.actor == outsider.username
    assert event.subject == subject.username and event.data["code"] == "permission_denied"


def test_an_agent_never_opens_a_case_about_themselves(make_case, agent):
    with pytest.raises(NotAllowed) as refused:
        make_case(about=agent)
    assert refused.value.code == "self_verification"
    assert AuditEvent.objects.filter(verb="case_refused", data__code="self_verification").exists()


def test_an_access_request_step_up_is_the_requester_verifying_themselves(make_case, manager):
    case = make_case(by=manager, about=manager, purpose=Purpose.ACCESS_REQUEST, action="access_grant")
    assert case.state == CaseState.OPEN and case.purpose == Purpose.ACCESS_REQUEST


def test_a_blocked_decision_makes_a_blocked_case_that_takes_no_challenge(make_case, agent):
    case = make_case(decision={**DECISION, "blocked": True, "reasons": ["blocked: velocity"]})
    assert case.state == CaseState.BLOCKED
    blocked = AuditEvent.objects.get(verb="case_blocked")
    assert blocked.outcome == "blocked" and blocked.data["reasons"] == ["blocked: velocity"]
    with pytest.raises(WrongState):
        challenge_create(case=case, method="totp", actor=agent)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"channel": "pigeon"}, "bad_case"),
        ({"ticket": "T" * 65}, "bad_case"),
        ({"purpose": "coffee"}, "bad_case"),
        ({"max_attempts": 0}, "bad_requirements"),
        ({"challenge_ttl_seconds": 0}, "bad_requirements"),
        ({"verification_window_minutes": 0}, "bad_requirements"),
        ({"factors": 1, "methods": ["manager_attestation"]}, "bad_requirements"),
        ({"factors": 0}, "bad_requirements"),
    ],
)
def test_bad_case_input_is_a_400_and_nothing_is_written(make_case, fields, code):
    with pytest.raises(BadRequest) as refused:
        make_case(**fields)
    assert refused.value.status == 400 and refused.value.code == code
    assert not VerificationCase.objects.exists()


def test_the_lost_factor_path_is_never_weaker(make_case):
    with pytest.raises(BadRequest) as refused:
        make_case(lost_factors=True, factors=0, methods=["manager_attestation"], manager_attestation=True)
    assert refused.value.code == "weaker_fallback"


def test_the_lost_factor_path_gets_at_least_the_minimum_cooling_off(make_case, settings):
    settings.VERIFICATION_FALLBACK_COOLING_OFF_HOURS = 24
    fallback = {"factors": 0, "methods": ["manager_attestation"], "manager_attestation": True}
    short = make_case(lost_factors=True, id_proofing=True, cooling_off_hours=2, **fallback)
    long = make_case(lost_factors=True, id_proofing=True, cooling_off_hours=48, **fallback)
    assert short.requirements["cooling_off_hours"] == 24
    assert long.requirements["cooling_off_hours"] == 48


def test_a_tier_that_notifies_security_emails_security_admins(make_case, security_admin, run_on_commit):
    with run_on_commit():
        make_case(decision={**DECISION, "tier": {"level": 3, "name": "Privileged"}, "notify_security": True})
    assert [m.to for m in mail.outbox] == [[security_admin.email]]


def test_an_agent_opening_unusually_many_cases_is_flagged_once(
    make_case, settings, security_admin, run_on_commit
):
    settings.VERIFICATION_AGENT_CASES_PER_HOUR_FLAG = 3
    with run_on_commit():
        for _ in range(4):
            make_case(action="account_unlock")
    assert AuditEvent.objects.filter(verb="agent_flagged").count() == 1
    assert any("flagged" in m.subject for m in mail.outbox)


# Transitions ---------------------------------------------------------------


def force(case, state):
    VerificationCase.objects.filter(pk=case.pk).update(state=state)
    case.refresh_from_db()
    return case


CANCELLABLE = {CaseState.OPEN, CaseState.VERIFIED}
ESCALATABLE = {CaseState.OPEN, CaseState.FAILED, CaseState.BLOCKED}


@pytest.mark.parametrize("state", list(CaseState))
def test_cancel_is_legal_only_from_open_or_verified(make_case, agent, state):
    case = force(make_case(), state)
    if state in CANCELLABLE:
        assert case_cancel(case=case, actor=agent, reason="caller hung up").state == CaseState.CANCELLED
        assert AuditEvent.objects.filter(verb="case_cancelled", actor=agent.username).exists()
    else:
        with pytest.raises(WrongState) as refused:
            case_cancel(case=case, actor=agent, reason="late")
        assert refused.value.status == 409
        assert VerificationCase.objects.get(pk=case.pk).state == state


@pytest.mark.parametrize("state", list(CaseState))
def test_escalate_is_legal_only_from_open_failed_or_blocked(make_case, agent, security_admin, state):
    case = force(make_case(), state)
    if state in ESCALATABLE:
        assert case_escalate(case=case, actor=agent, note="caller insisted").state == CaseState.ESCALATED
        event = AuditEvent.objects.get(verb="case_escalated")
        assert event.outcome == "info" and event.data["from"] == state
    else:
        with pytest.raises(WrongState):
            case_escalate(case=case, actor=agent, note="")
        assert VerificationCase.objects.get(pk=case.pk).state == state


def test_closing_a_case_expires_what_it_was_waiting_for(make_case, agent, enrolled):
    case = make_case()
    push = challenge_create(case=case, method="push", actor=agent)
    case_escalate(case=case, actor=agent, note="odd call")
    assert Challenge.objects.get(pk=push.pk).state == ChallengeState.EXPIRED


def test_open_cases_expire_after_their_deadline_and_unused_verified_ones_after_their_window(
    make_case, agent, time_machine
):
    stale_open = make_case()
    unused = force(make_case(), CaseState.VERIFIED)
    VerificationCase.objects.filter(pk=unused.pk).update(
        verified_until=timezone.now() + timedelta(minutes=10)
    )
    executed = force(make_case(), CaseState.EXECUTED)
    time_machine.shift(timedelta(minutes=5))
    assert cases_expire() == 0
    fresh = make_case()
    time_machine.shift(timedelta(minutes=26))
    assert cases_expire() == 2
    states = dict(VerificationCase.objects.values_list("pk", "state"))
    assert states[stale_open.pk] == states[unused.pk] == CaseState.EXPIRED
    assert states[executed.pk] == CaseState.EXECUTED and states[fresh.pk] == CaseState.OPEN
    expired = AuditEvent.objects.filter(verb="case_expired").values_list("data", flat=True)
    assert sorted(d["was"] for d in expired) == ["open", "verified"]
    assert cases_expire() == 0


def test_the_handler_registered_for_a_purpose_hears_of_verification_once(make_case, agent, enrolled):
    from tests.otp import current_token

    heard = []
    register_verified_handler("test_purpose", lambda case: heard.append(case.pk))
    case = make_case(purpose=Purpose.SERVICE_DESK)
    VerificationCase.objects.filter(pk=case.pk).update(purpose="test_purpose")
    case.refresh_from_db()
    from verification.challenges import challenge_answer

    challenge = challenge_create(case=case, method="totp", actor=agent)
    challenge_answer(challenge=challenge, code=current_token(enrolled["totp"].device), actor=agent)
    assert heard == [case.pk]
