"""Actions run only for a verified, unconsumed, in-window case of their agent, through
executors that never show the agent a secret, and the subject always hears of them."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django_otp.oath import totp

from audit.models import AuditEvent
from portal.roles import Role
from tests.factories import UserFactory
from tests.otp import current_token
from tests.verification.conftest import signed_by
from verification.actions import action_execute, action_webhook_deliver, action_webhooks_sweep
from verification.challenges import challenge_answer, challenge_create
from verification.channels import DeliveryError
from verification.devices import factors_of
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import AuthenticatorDevice, CaseState, Notice, OneTimeLink, Purpose, VerificationCase
from verification.self_service import enrolment_complete, enrolment_device, password_reset_complete

pytestmark = pytest.mark.django_db


@pytest.fixture
def verified(make_case, agent, enrolled):
    """Open a case for `action` and pass its one factor by TOTP."""

    def make(action="password_reset", **extra):
        case = make_case(action=action, **extra)
        challenge = challenge_create(case=case, method="totp", actor=agent)
        challenge_answer(challenge=challenge, code=current_token(enrolled["totp"].device), actor=agent)
        case.refresh_from_db()
        assert case.state == CaseState.VERIFIED
        return case

    return make


def mailed_link(kind: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"/verify/{kind}/([\w-]+)/", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {kind} link mailed")


def assert_blocked(case, actor, exc_type, reason_part):
    with pytest.raises(exc_type) as refused:
        action_execute(case=case, actor=actor)
    assert refused.value.code == "action_refused" and reason_part in str(refused.value)
    event = AuditEvent.objects.filter(verb="action_blocked").latest("seq")
    assert event.outcome == "blocked" and reason_part in event.data["reason"]
    assert (event.actor, event.action, event.target_id) == (actor.username, case.action, str(case.pk))
    stored = VerificationCase.objects.get(pk=case.pk)
    assert stored.consumed_at is None or stored.state == CaseState.EXECUTED


def test_an_open_case_authorises_nothing(make_case, agent, enrolled):
    assert_blocked(make_case(), agent, WrongState, "not verified")


def test_only_the_cases_agent_acts_on_it(verified):
    other = UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT])
    case = verified()
    assert_blocked(case, other, NotAllowed, "only the agent")
    assert VerificationCase.objects.get(pk=case.pk).state == CaseState.VERIFIED


def test_a_verified_case_authorises_one_action_once(verified, agent):
    case = verified()
    assert action_execute(case=case, actor=agent).state == CaseState.EXECUTED
    assert_blocked(case, agent, WrongState, "executed")


def test_the_verification_window_closes(verified, agent, time_machine):
    case = verified()
    time_machine.shift(timedelta(minutes=10, seconds=1))
    assert_blocked(case, agent, WrongState, "window")


def test_a_step_up_case_is_not_a_service_desk_action(verified, agent):
    case = verified()
    VerificationCase.objects.filter(pk=case.pk).update(purpose=Purpose.ACCESS_REQUEST)
    case.refresh_from_db()
    assert_blocked(case, agent, WrongState, "not a service-desk action")


def test_an_action_without_an_executor_is_refused(verified, agent):
    assert_blocked(verified(action="access_grant"), agent, WrongState, "not a service-desk action")


def test_password_reset_mails_a_hashed_single_use_link_the_agent_never_sees(
    verified, agent, subject, run_on_commit
):
    with run_on_commit():
        case = action_execute(case=verified(), actor=agent)
    assert case.execution_result == {"message": "Link sent to s***@example.test"}
    token = mailed_link("reset")
    assert token not in str(AuditEvent.objects.values_list("data", flat=True))
    assert not Notice.objects.filter(message__contains=token).exists()
    link = OneTimeLink.objects.get(kind="password_reset")
    assert link.token_hash == OneTimeLink.hash_token(token) and link.user == subject
    assert link.expires_at - link.created_at == timedelta(minutes=20)
    with pytest.raises(BadRequest) as mismatch:
        password_reset_complete(token=token, password="Long-enough-pass-1", password_again="other")
    assert mismatch.value.code == "password_mismatch"
    with pytest.raises(BadRequest) as weak:
        password_reset_complete(token=token, password="123", password_again="123")
    assert weak.value.code == "weak_password"
    password_reset_complete(token=token, password="Long-enough-pass-1", password_again="Long-enough-pass-1")
    subject.refresh_from_db()
    assert subject.check_password("Long-enough-pass-1")
    with pytest.raises(BadRequest):
        password_reset_complete(token=token, password="Another-pass-22", password_again="Another-pass-22")
    assert AuditEvent.objects.get(verb="password_reset_completed").actor == subject.username


def test_a_new_reset_link_retires_the_earlier_one(verified, agent, run_on_commit):
    with run_on_commit():
        action_execute(case=verified(), actor=agent)
    first = mailed_link("reset")
    with run_on_commit():
        action_execute(case=verified(), actor=agent)
    second = mailed_link("reset")
    assert first != second
    with pytest.raises(BadRequest):
        password_reset_complete(
            token=first, password="Long-enough-pass-1", password_again="Long-enough-pass-1"
        )
    password_reset_complete(token=second, password="Long-enough-pass-1", password_again="Long-enough-pass-1")


def test_reset_links_die_after_twenty_minutes(verified, agent, run_on_commit, time_machine):
    with run_on_commit():
        action_execute(case=verified(), actor=agent)
    token = mailed_link("reset")
    time_machine.shift(timedelta(minutes=20, seconds=1))
    with pytest.raises(BadRequest):
        password_reset_complete(
            token=token, password="Long-enough-pass-1", password_again="Long-enough-pass-1"
        )


def test_mfa_reset_removes_every_factor_and_mails_an_enrolment_link(verified, agent, subject, run_on_commit):
    with run_on_commit():
        case = action_execute(case=verified(action="mfa_reset"), actor=agent)
    assert case.execution_result["factors_removed"] == 5
    assert factors_of(subject) == []
    token = mailed_link("enrol")
    device = enrolment_device(token=token)
    assert device is not None and not device.confirmed
    with pytest.raises(BadRequest):
        enrolment_complete(token=token, code="000000")
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert enrolment_complete(token=token, code=code).confirmed
    assert enrolment_device(token=token) is None
    assert AuthenticatorDevice.objects.filter(user=subject, confirmed=True).count() == 1


def test_device_enrollment_keeps_existing_factors(verified, agent, subject, run_on_commit):
    with run_on_commit():
        action_execute(case=verified(action="device_enrollment"), actor=agent)
    assert len(factors_of(subject)) == 5 and mailed_link("enrol")


def test_account_unlock_reactivates_the_subject(verified, agent, subject):
    case = verified(action="account_unlock")
    subject.is_active, subject.status = False, "suspended"
    subject.save()
    assert action_execute(case=case, actor=agent).execution_result == {"message": "subject unlocked"}
    subject.refresh_from_db()
    assert subject.is_active and subject.status == "active"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "no_change"),
        ({"email": "not-an-address"}, "bad_email"),
        ({"phone": "12"}, "bad_phone"),
        ({"phone": "+1555"}, "bad_phone"),
    ],
)
def test_bad_contact_details_are_400_and_leave_the_case_usable(verified, agent, params, code):
    case = verified(action="contact_change")
    with pytest.raises(BadRequest) as refused:
        action_execute(case=case, actor=agent, params=params)
    assert refused.value.code == code
    stored = VerificationCase.objects.get(pk=case.pk)
    assert stored.state == CaseState.VERIFIED and stored.consumed_at is None


def test_a_contact_change_is_announced_at_the_old_address_and_number(
    verified, agent, subject, sms_outbox, run_on_commit
):
    old_email, old_phone = subject.email, subject.phone
    case = verified(action="contact_change")
    with run_on_commit():
        done = action_execute(
            case=case, actor=agent, params={"email": "new@example.test", "phone": "+44 20 7946 0958"}
        )
    assert done.execution_result["email"] == "n***@example.test"
    subject.refresh_from_db()
    assert (subject.email, subject.phone) == ("new@example.test", "+442079460958")
    assert subject.contact_changed_at is not None
    assert [m.to for m in mail.outbox if "done on your account" in m.subject] == [[old_email]]
    assert [sms["to"] for sms in sms_outbox()] == [old_phone]


@pytest.mark.parametrize("action", ["password_reset", "mfa_reset", "device_enrollment", "account_unlock"])
def test_after_any_action_the_subject_hears_what_who_and_which_ticket(
    verified, agent, subject, sms_outbox, run_on_commit, action
):
    case = verified(action=action, ticket="INC-808")
    with run_on_commit():
        action_execute(case=case, actor=agent)
    [notice] = [m for m in mail.outbox if "done on your account" in m.subject]
    assert notice.to == [subject.email]
    assert (
        action.replace("_", " ") in notice.body.lower()
        and "agent" in notice.body
        and "INC-808" in notice.body
    )
    [sms] = sms_outbox()
    assert sms["to"] == subject.phone and "INC-808" in sms["body"] and "agent" in sms["body"]
    assert AuditEvent.objects.get(verb="action_executed").actor == agent.username


# The webhook executor (IdP automation) -------------------------------------


@pytest.fixture
def idp(settings, hook_server):
    settings.ACTION_WEBHOOK_URL, settings.ACTION_WEBHOOK_SECRET = hook_server.url, "idp-secret"
    return hook_server


def test_without_a_webhook_the_action_is_left_to_a_person(verified, agent, settings):
    settings.ACTION_WEBHOOK_URL = ""
    case = action_execute(case=verified(action="role_escalation"), actor=agent)
    assert case.execution_result["delivery"] == "manual"


def test_the_webhook_posts_a_signed_payload_and_records_the_delivery(verified, agent, idp, run_on_commit):
    case = verified(action="data_export", ticket="CHG-7")
    with run_on_commit():
        assert action_execute(case=case, actor=agent).execution_result["delivery"] == "queued"
    [request] = idp.received
    assert signed_by("idp-secret", request)
    assert request["json"]["action"] == "data_export" and request["json"]["ticket"] == "CHG-7"
    assert request["json"]["case"] == case.pk and request["json"]["subject"] == "subject"
    result = VerificationCase.objects.get(pk=case.pk).execution_result
    assert (result["delivery"], result["status"]) == ("delivered", 200) and "claimed_until" not in result
    assert action_webhook_deliver(case_id=case.pk) is False
    assert len(idp.received) == 1


def test_a_failing_webhook_is_retried_and_each_attempt_recorded(
    verified, agent, idp, run_on_commit, eager_retries
):
    idp.statuses = [500, 503]
    case = verified(action="role_escalation", methods=["totp"], factors=1)
    with run_on_commit():
        action_execute(case=case, actor=agent)
    assert len(idp.received) == 3
    outcomes = list(
        AuditEvent.objects.filter(verb="action_delivery").order_by("seq").values_list("outcome", flat=True)
    )
    assert outcomes == ["failure", "failure", "success"]
    assert VerificationCase.objects.get(pk=case.pk).execution_result["delivery"] == "delivered"


def test_a_webhook_that_never_answers_ends_recorded_as_failed(verified, agent, idp):
    idp.statuses = [500] * 10
    case = action_execute(case=verified(action="data_export"), actor=agent)
    with pytest.raises(DeliveryError):
        action_webhook_deliver(case_id=case.pk)
    result = VerificationCase.objects.get(pk=case.pk).execution_result
    assert result["delivery"] == "failed" and "answered 500" in result["error"]


def test_a_webhook_action_the_broker_never_took_is_swept_up(verified, agent, idp, time_machine):
    case = action_execute(case=verified(action="data_export"), actor=agent)
    assert idp.received == []
    assert action_webhooks_sweep() == 0
    time_machine.shift(timedelta(seconds=31))
    assert action_webhooks_sweep() == 1
    assert len(idp.received) == 1
    assert VerificationCase.objects.get(pk=case.pk).execution_result["delivery"] == "delivered"
    assert action_webhooks_sweep() == 0
