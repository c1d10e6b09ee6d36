"""The CONTRACT verification flow through the REST API, with real codes."""

import re

import pytest
from django.core import mail
from django_otp.oath import totp

from audit.models import AuditEvent
from verification.models import Challenge, VerificationCase

pytestmark = pytest.mark.django_db


def totp_now(enrolled) -> str:
    device = enrolled["totp"].device
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_open_case_returns_the_contract_shape(open_case, subject):
    case = open_case()
    assert case["state"] == "open"
    assert case["subject"] == subject.username
    assert case["tier"] == {"level": 2, "name": "Elevated"}
    assert case["reasons"][0].startswith("Password reset: base tier 2")
    assert case["requirements"]["factors"] == 1
    assert "email_otp" not in case["requirements"]["methods"]
    assert case["factors_passed"] == 0 and case["expires_at"]


def test_case_detail_lists_challenges_and_factors_without_secrets(open_case, api, enrolled):
    case = api.get(f"/api/v1/verifications/{open_case()['id']}/").json()
    assert case["challenges"] == []
    assert {f["method"] for f in case["factors"]} >= {"totp", "push", "sms_otp", "email_otp", "backup_code"}
    assert enrolled["totp"].device.key not in str(case)


def test_totp_verifies_and_execute_sends_a_reset_link(
    open_case, api, enrolled, subject, django_capture_on_commit_callbacks
):
    case = open_case()
    challenge = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "totp"}, format="json"
    ).json()
    assert challenge["state"] == "sent" and challenge["attempts_left"] == 3
    answer = api.post(
        f"/api/v1/challenges/{challenge['id']}/answer/", {"code": totp_now(enrolled)}, format="json"
    )
    assert answer.json() == {"state": "passed", "attempts_left": 3}
    assert api.get(f"/api/v1/verifications/{case['id']}/").json()["state"] == "verified"
    with django_capture_on_commit_callbacks(execute=True):
        executed = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert executed.status_code == 200
    assert executed.json()["state"] == "executed"
    assert executed.json()["result"]["message"] == f"Link sent to {subject.email[0]}***@example.test"
    reset_mail = next(m for m in mail.outbox if "Reset your password" in m.subject)
    assert re.search(r"/verify/reset/[\w-]+/", reset_mail.body)
    assert any("done on your account" in m.subject for m in mail.outbox)
    again = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert again.status_code == 409
    assert AuditEvent.objects.filter(verb="action_blocked", outcome="blocked").exists()


def test_sms_code_is_sent_hashed_and_verifies(
    open_case, api, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(tmp_path / "sms.jsonl")
    case = open_case()
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            f"/api/v1/verifications/{case['id']}/challenges/", {"method": "sms_otp"}, format="json"
        )
    assert created.status_code == 201 and created.json()["state"] == "queued"
    body = (tmp_path / "sms.jsonl").read_text()
    code = re.search(r"Vigil code (\d{6})", body).group(1)
    stored = Challenge.objects.get(pk=created.json()["id"])
    assert stored.state == "sent" and code not in stored.secret_hash and len(stored.secret_hash) == 64
    assert "agent" in body and "INC-1" in body
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert api.post(f"/api/v1/challenges/{stored.pk}/answer/", {"code": wrong}, format="json").json() == {
        "state": "sent",
        "attempts_left": 2,
    }
    assert (
        api.post(f"/api/v1/challenges/{stored.pk}/answer/", {"code": code}, format="json").json()["state"]
        == "passed"
    )
    reuse = api.post(f"/api/v1/challenges/{stored.pk}/answer/", {"code": code}, format="json")
    assert reuse.status_code == 409


def test_wrong_codes_lock_the_challenge_and_fail_the_case(open_case, api, enrolled):
    case = open_case()
    challenge = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "backup_code"}, format="json"
    ).json()
    states = [
        api.post(f"/api/v1/challenges/{challenge['id']}/answer/", {"code": "wrongcode"}, format="json").json()
        for _ in range(4)
    ]
    assert [s["state"] for s in states] == ["sent", "sent", "locked", "locked"]
    assert states[-1]["attempts_left"] == 0
    real_code = enrolled["backup_codes"].secrets_to_show[0]
    assert (
        api.post(f"/api/v1/challenges/{challenge['id']}/answer/", {"code": real_code}, format="json").json()[
            "state"
        ]
        == "locked"
    )
    assert VerificationCase.objects.get(pk=case["id"]).state == "failed"


def test_method_not_allowed_and_same_channel_are_400(open_case, api):
    case = open_case(channel="phone")
    email = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "email_otp"}, format="json"
    )
    assert email.status_code == 400 and email.json()["code"] == "method_not_allowed"
    sms = api.post(f"/api/v1/verifications/{case['id']}/challenges/", {"method": "sms_otp"}, format="json")
    assert sms.status_code == 400 and sms.json()["code"] == "same_channel"
    bad = api.post(f"/api/v1/verifications/{case['id']}/challenges/", {"method": "telepathy"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) >= {"detail", "code"}


def test_push_with_number_matching(open_case, api, api_as, subject):
    case = open_case()
    push = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "push"}, format="json"
    ).json()
    number = push["match_number"]
    assert len(number) >= 3
    mine = api_as(subject)
    pending = mine.get("/api/v1/me/challenges/").json()
    assert [p["id"] for p in pending] == [push["id"]]
    assert "match_number" not in pending[0] and number not in pending[0].values()
    assert pending[0]["agent"] == "agent" and pending[0]["ticket"] == "INC-1"
    wrong = str((int(number) + 1) % 1000).zfill(3)
    assert mine.post(
        f"/api/v1/me/challenges/{push['id']}/", {"decision": "approve", "number": wrong}, format="json"
    ).json() == {"state": "sent", "attempts_left": 2}
    ok = mine.post(
        f"/api/v1/me/challenges/{push['id']}/", {"decision": "approve", "number": number}, format="json"
    )
    assert ok.json()["state"] == "passed"
    assert api.get(f"/api/v1/verifications/{case['id']}/").json()["state"] == "verified"


def test_report_cancels_holds_the_subject_and_tells_security(
    open_case, api, api_as, subject, security_admin, django_capture_on_commit_callbacks
):
    case = open_case()
    push = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "push"}, format="json"
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        reported = api_as(subject).post(
            f"/api/v1/me/challenges/{push['id']}/", {"decision": "report"}, format="json"
        )
    assert reported.json()["state"] == "reported"
    assert VerificationCase.objects.get(pk=case["id"]).state == "cancelled"
    assert any(security_admin.email in m.to and "Impersonation reported" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(verb="push_reported", outcome="blocked").exists()
    again = open_case()
    held = api.post(f"/api/v1/verifications/{again['id']}/challenges/", {"method": "totp"}, format="json")
    assert held.status_code == 409 and held.json()["code"] == "subject_on_hold"


def test_push_bombing_is_rate_limited(open_case, api):
    case = open_case()
    codes = [
        api.post(
            f"/api/v1/verifications/{case['id']}/challenges/", {"method": "push"}, format="json"
        ).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 429]


def test_only_agents_open_cases_and_never_about_themselves(api_as, subject, agent, enrolled, default_policy):
    body = {"subject": subject.username, "action": "password_reset", "channel": "phone", "ticket": "X"}
    assert api_as(subject).post("/api/v1/verifications/", body, format="json").status_code == 403
    own = api_as(agent).post("/api/v1/verifications/", {**body, "subject": agent.username}, format="json")
    assert own.status_code == 403 and own.json()["code"] == "self_verification"


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "ghost", "action": "password_reset", "channel": "phone"},
        {"subject": "subject", "action": "make_coffee", "channel": "phone"},
        {"subject": "subject", "action": "password_reset", "channel": "pigeon"},
        {},
    ],
)
def test_bad_case_input_is_400_never_500(api, enrolled, default_policy, body):
    response = api.post("/api/v1/verifications/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"detail", "code"}
    assert VerificationCase.objects.count() == 0


def test_other_agents_cannot_see_or_answer_a_case(open_case, api_as, enrolled):
    from portal.roles import Role
    from tests.factories import UserFactory

    case = open_case()
    other = api_as(UserFactory(username="agent2", is_staff=True, roles=[Role.AGENT]))
    assert other.get(f"/api/v1/verifications/{case['id']}/").status_code == 404
    assert other.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json").status_code == 404


def test_execute_before_verification_is_409_and_audited_blocked(open_case, api):
    case = open_case()
    response = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert response.status_code == 409
    event = AuditEvent.objects.get(verb="action_blocked")
    assert event.outcome == "blocked" and "open" in event.data["reason"]
