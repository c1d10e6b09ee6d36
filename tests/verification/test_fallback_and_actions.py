import re
from datetime import timedelta

import pytest
from django.core import mail
from django_otp.oath import totp

from tests.conftest import PASSWORD
from tests.otp import current_token
from verification.models import AuthenticatorDevice, VerificationCase

pytestmark = pytest.mark.django_db


def link_from_mail(kind: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"/verify/{kind}/[\w-]+/", message.body)
        if found:
            return found.group(0)
    raise AssertionError(f"no {kind} link mailed")


@pytest.fixture
def verifier(security_admin):
    AuthenticatorDevice.objects.create(user=security_admin, name="app", confirmed=True)
    return security_admin


def test_lost_factor_path_needs_attestation_proofing_and_cooling_off(
    api,
    api_as,
    subject,
    manager,
    verifier,
    enrolled,
    default_policy,
    time_machine,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        case = api.post(
            "/api/v1/verifications/",
            {
                "subject": subject.username,
                "action": "mfa_reset",
                "channel": "phone",
                "ticket": "INC-5",
                "lost_factors": True,
            },
            format="json",
        ).json()
    assert case["requirements"] == {
        "factors": 0,
        "methods": ["manager_attestation"],
        "manager_attestation": True,
        "id_proofing": True,
    }
    totp_try = api.post(f"/api/v1/verifications/{case['id']}/challenges/", {"method": "totp"}, format="json")
    assert totp_try.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        attest = api.post(
            f"/api/v1/verifications/{case['id']}/challenges/",
            {"method": "manager_attestation"},
            format="json",
        ).json()
    assert attest["recipient"] == manager.username
    assert (
        api_as(manager)
        .post(f"/api/v1/me/challenges/{attest['id']}/", {"decision": "approve"}, format="json")
        .json()["state"]
        == "passed"
    )
    assert VerificationCase.objects.get(pk=case["id"]).state == "open"

    from verification.errors import NotAllowed
    from verification.fallback import id_proofing_record

    stored = VerificationCase.objects.get(pk=case["id"])
    with pytest.raises(NotAllowed):
        id_proofing_record(case=stored, verifier=verifier, verifier_code="000000", evidence="passport")
    with django_capture_on_commit_callbacks(execute=True):
        id_proofing_record(
            case=stored,
            verifier=verifier,
            verifier_code=current_token(AuthenticatorDevice.objects.get(user=verifier)),
            evidence="passport",
        )
    stored.refresh_from_db()
    assert stored.state == "verified"
    assert stored.usable_from - stored.verified_at == timedelta(hours=48)  # mfa_reset → Critical: 48 h
    assert any("will be reset" in m.subject for m in mail.outbox if subject.email in m.to)

    early = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert early.status_code == 409 and "cooling-off" in early.json()["detail"]

    time_machine.shift(timedelta(hours=48, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        done = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert done.status_code == 200, done.json()
    assert done.json()["result"]["factors_removed"] >= 5
    assert not AuthenticatorDevice.objects.filter(user=subject, confirmed=True).exists()
    assert link_from_mail("enrol")


def test_any_old_factor_can_cancel_during_cooling_off(
    api,
    api_as,
    subject,
    manager,
    verifier,
    enrolled,
    default_policy,
    client,
    django_capture_on_commit_callbacks,
):
    from verification.fallback import id_proofing_record

    case = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "mfa_reset", "channel": "phone", "lost_factors": True},
        format="json",
    ).json()
    attest = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "manager_attestation"}, format="json"
    ).json()
    api_as(manager).post(f"/api/v1/me/challenges/{attest['id']}/", {"decision": "approve"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        id_proofing_record(
            case=VerificationCase.objects.get(pk=case["id"]),
            verifier=verifier,
            verifier_code=current_token(AuthenticatorDevice.objects.get(user=verifier)),
            evidence="badge",
        )
    cancel = link_from_mail("cancel")
    assert client.get(cancel).status_code == 200
    assert client.post(cancel).status_code == 200
    assert VerificationCase.objects.get(pk=case["id"]).state == "cancelled"
    assert client.post(cancel).status_code == 410


def test_password_reset_link_works_once(
    open_case, api, api_as, subject, client, django_capture_on_commit_callbacks, approve_by_push
):
    case = open_case()
    approve_by_push(case["id"])
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    link = link_from_mail("reset")
    weak = client.post(link, {"password": "123", "password_again": "123"})
    assert weak.status_code == 400
    new_password = "a-much-Longer-passphrase-77"
    assert client.post(link, {"password": new_password, "password_again": new_password}).status_code == 200
    subject.refresh_from_db()
    assert subject.check_password(new_password)
    assert client.post(link, {"password": "x" * 20, "password_again": "x" * 20}).status_code == 410


def test_reset_links_expire_after_twenty_minutes(
    open_case, api, api_as, subject, client, time_machine, django_capture_on_commit_callbacks, approve_by_push
):
    case = open_case()
    approve_by_push(case["id"])
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    time_machine.shift(timedelta(minutes=21))
    assert client.get(link_from_mail("reset")).status_code == 410


def test_enrolment_link_enrols_an_authenticator(
    api,
    api_as,
    subject,
    enrolled,
    default_policy,
    client,
    django_capture_on_commit_callbacks,
    approve_by_push,
    time_machine,
):
    case = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "device_enrollment", "channel": "walk_in"},
        format="json",
    ).json()
    approve_by_push(case["id"])
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    link = link_from_mail("enrol")
    page = client.get(link)
    assert page.status_code == 200 and b"<svg" in page.content
    device = AuthenticatorDevice.objects.get(user=subject, confirmed=False)
    wrong = f"{(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits) + 1) % 10**6:06d}"
    assert client.post(link, {"code": wrong}).status_code == 400
    time_machine.shift(timedelta(seconds=2))  # django-otp throttles the device after a failure
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert client.post(link, {"code": code}).status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_contact_change_validates_and_tells_the_old_address(
    api, api_as, subject, enrolled, default_policy, django_capture_on_commit_callbacks, approve_by_push
):
    old_email = subject.email
    case = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "contact_change", "channel": "walk_in"},
        format="json",
    ).json()
    approve_by_push(case["id"])
    bad = api.post(
        f"/api/v1/verifications/{case['id']}/execute/", {"params": {"email": "nope"}}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_email"
    assert VerificationCase.objects.get(pk=case["id"]).state == "verified"
    with django_capture_on_commit_callbacks(execute=True):
        done = api.post(
            f"/api/v1/verifications/{case['id']}/execute/",
            {"params": {"email": "new@example.test"}},
            format="json",
        )
    assert done.status_code == 200
    subject.refresh_from_db()
    assert subject.email == "new@example.test" and subject.contact_changed_at is not None
    assert any(old_email in m.to and "contact change done" in m.subject.lower() for m in mail.outbox)


def test_me_page_needs_the_subjects_own_factor_and_takes_a_typed_number(open_case, api, client, subject):
    assert client.get("/me/").status_code == 302
    client.post("/me/login/", {"username": subject.username, "password": PASSWORD})
    assert client.get("/me/").status_code == 302
    device = AuthenticatorDevice.objects.get(user=subject)
    client.post(
        "/me/login/", {"username": subject.username, "password": PASSWORD, "otp_token": current_token(device)}
    )
    case = open_case()
    push = api.post(
        f"/api/v1/verifications/{case['id']}/challenges/", {"method": "push"}, format="json"
    ).json()
    page = client.get("/me/").content.decode()
    assert f"challenge-{push['id']}" in page
    visible = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)
    assert not re.search(rf"\b{push['match_number']}\b", visible)
    client.post(f"/me/challenges/{push['id']}/", {"decision": "approve", "number": push["match_number"]})
    assert VerificationCase.objects.get(pk=case["id"]).state == "verified"
