from datetime import timedelta

import pytest
from django.core import mail
from django_otp.oath import totp

from audit.models import AuditEvent
from portal.roles import Role
from tests.factories import UserFactory
from verification.challenges import challenge_dispatch, challenges_sweep
from verification.channels import DeliveryError
from verification.factors import factor_enroll
from verification.models import Challenge, VerificationCase

pytestmark = pytest.mark.django_db


def challenge(api, case_id, method, **extra):
    return api.post(
        f"/api/v1/verifications/{case_id}/challenges/", {"method": method, **extra}, format="json"
    )


def answer(api, challenge_id, code):
    return api.post(f"/api/v1/challenges/{challenge_id}/answer/", {"code": code}, format="json")


def test_code_expires_after_the_tier_ttl(open_case, api, enrolled, time_machine):
    case = open_case()
    created = challenge(api, case["id"], "backup_code").json()
    time_machine.shift(timedelta(seconds=301))
    result = answer(api, created["id"], enrolled["backup_codes"].secrets_to_show[0]).json()
    assert result["state"] == "expired"
    assert AuditEvent.objects.filter(verb="challenge_expired").exists()


def test_totp_code_cannot_be_replayed_in_the_same_step(open_case, api, enrolled):
    device = enrolled["totp"].device
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    first_case = open_case()
    first = challenge(api, first_case["id"], "totp").json()
    assert answer(api, first["id"], code).json()["state"] == "passed"
    second_case = open_case()
    second = challenge(api, second_case["id"], "totp").json()
    assert answer(api, second["id"], code).json()["state"] == "sent"


def test_a_factor_younger_than_the_tier_minimum_does_not_count(open_case, api, subject):
    new_device = factor_enroll(user=subject, method="push").device
    case = open_case()
    response = challenge(api, case["id"], "push", device=new_device.persistent_id)
    assert response.status_code == 400 and response.json()["code"] == "factor_too_new"


def test_sms_does_not_count_right_after_a_phone_change(open_case, api, subject, enrolled):
    from django.utils import timezone

    subject.contact_changed_at = timezone.now() - timedelta(hours=2)
    subject.save()
    case = open_case()
    response = challenge(api, case["id"], "sms_otp")
    assert response.status_code == 400 and response.json()["code"] == "factor_too_new"


def test_failures_are_counted_per_subject_across_agents_and_escalate(
    open_case, api, api_as, subject, enrolled, settings, default_policy
):
    settings.VERIFICATION_SUBJECT_FAILURE_LIMIT = 4
    other_agent = api_as(UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT]))
    first = open_case()
    locked = challenge(api, first["id"], "backup_code").json()
    for _ in range(3):
        answer(api, locked["id"], "nope1234")
    second = other_agent.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "account_unlock", "channel": "walk_in"},
        format="json",
    ).json()
    attempt = other_agent.post(
        f"/api/v1/verifications/{second['id']}/challenges/", {"method": "backup_code"}, format="json"
    ).json()
    other_agent.post(f"/api/v1/challenges/{attempt['id']}/answer/", {"code": "nope1234"}, format="json")
    assert VerificationCase.objects.get(pk=second["id"]).state == "escalated"
    assert AuditEvent.objects.filter(verb="case_escalated", subject=subject.username).exists()


def test_email_code_message_says_what_who_and_how_to_report(
    api_as, subject, agent, enrolled, default_policy, django_capture_on_commit_callbacks
):
    api = api_as(agent)
    case = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "account_unlock", "channel": "phone", "ticket": "INC-77"},
        format="json",
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        created = challenge(api, case["id"], "email_otp")
    assert created.status_code == 201
    message = mail.outbox[-1]
    assert message.to == [subject.email]
    assert "account unlock" in message.body and "agent" in message.body and "INC-77" in message.body
    assert "If this was not you" in message.body
    assert message.alternatives and "<strong>" in message.alternatives[0][0]


def test_failed_delivery_stays_queued_and_the_sweeper_resends(
    open_case, api, settings, monkeypatch, time_machine, tmp_path
):
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "missing-dir" / "sms.jsonl")
    case = open_case()
    created = challenge(api, case["id"], "sms_otp").json()
    with pytest.raises(DeliveryError):
        challenge_dispatch(challenge_id=created["id"])
    stored = Challenge.objects.get(pk=created["id"])
    assert stored.state == "queued" and "SMS file" in stored.delivery_error and stored.secret_hash == ""
    shown = api.get(f"/api/v1/verifications/{case['id']}/").json()["challenges"][0]
    assert shown["delivery_error"]
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    time_machine.shift(timedelta(seconds=31))
    assert challenges_sweep()["redispatched"] == 1
    stored.refresh_from_db()
    assert stored.state == "sent" and stored.delivery_error == ""
    assert (tmp_path / "sms.jsonl").read_text().count("Vigil code") == 1


def test_stale_cases_expire_on_their_own(open_case, api, time_machine):
    from verification.cases import cases_expire

    case = open_case()
    time_machine.shift(timedelta(minutes=31))
    assert cases_expire() == 1
    assert VerificationCase.objects.get(pk=case["id"]).state == "expired"
    response = challenge(api, case["id"], "totp")
    assert response.status_code == 409


def test_verified_case_expires_when_its_window_passes(open_case, api, approve_by_push, time_machine):
    case = open_case()
    approve_by_push(case["id"])
    time_machine.shift(timedelta(minutes=11))
    response = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert response.status_code == 409 and "window" in response.json()["detail"]


def test_nobody_else_answers_a_push(open_case, api, api_as, outsider):
    case = open_case()
    push = challenge(api, case["id"], "push").json()
    stranger = api_as(outsider)
    assert stranger.get("/api/v1/me/challenges/").json() == []
    response = stranger.post(
        f"/api/v1/me/challenges/{push['id']}/",
        {"decision": "approve", "number": push["match_number"]},
        format="json",
    )
    assert response.status_code == 404
    assert (
        api.post(
            f"/api/v1/challenges/{push['id']}/answer/", {"code": push["match_number"]}, format="json"
        ).status_code
        == 400
    )


def test_a_code_read_back_before_the_send_is_recorded_still_counts(open_case, api, settings, tmp_path):
    import re

    from verification.challenges import challenge_dispatch as dispatch
    from verification.models import ChallengeState

    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "sms.jsonl")
    case = open_case()
    created = challenge(api, case["id"], "sms_otp").json()
    dispatch(challenge_id=created["id"])
    # The moment between the message leaving and the worker recording it: still queued, hash held.
    Challenge.objects.filter(pk=created["id"]).update(state=ChallengeState.QUEUED, sent_at=None)
    code = re.search(r"Vigil code (\d{6})", (tmp_path / "sms.jsonl").read_text()).group(1)
    assert answer(api, created["id"], code).json()["state"] == "passed"
