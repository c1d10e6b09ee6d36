import re

import pytest
from django_otp.plugins.otp_email.models import EmailDevice

from audit.models import AuditEvent
from portal.admin_site import SIGN_IN_REFUSED
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token, otp_login, wrong_token
from verification.factors import factor_enroll

pytestmark = pytest.mark.django_db


def login(client, user, **extra: str):
    return client.post("/admin/login/", {"username": user.username, "password": PASSWORD, **extra})


def test_password_alone_never_opens_the_admin(client, security_admin):
    authenticator(security_admin)
    response = login(client, security_admin)
    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    assert client.get("/admin/").status_code == 302
    assert not AuditEvent.objects.filter(verb="login").exists()


def test_a_session_logged_in_by_password_alone_is_not_admitted(client, security_admin):
    client.force_login(security_admin)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_staff_without_any_factor_cannot_get_in(client, agent):
    response = login(client, agent, otp_token="123456")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_password_and_totp_open_the_admin(client, security_admin):
    otp_login(client, security_admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "Verification, access and audit" in response.content.decode()
    event = AuditEvent.objects.get(verb="login")
    assert (event.actor, event.outcome) == (security_admin.username, "success")


def test_wrong_totp_is_refused_and_recorded(client, security_admin):
    device = authenticator(security_admin)
    response = login(client, security_admin, otp_token=wrong_token(device))
    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    assert client.get("/admin/").status_code == 302
    event = AuditEvent.objects.get(verb="otp_failed")
    assert (event.subject, event.outcome) == (security_admin.username, "failure")
    assert not AuditEvent.objects.filter(verb="login").exists()


def test_a_used_code_cannot_be_replayed(client, security_admin):
    device = authenticator(security_admin)
    token = current_token(device)
    assert login(client, security_admin, otp_token=token).status_code == 302
    client.logout()
    assert login(client, security_admin, otp_token=token).status_code == 200
    assert client.get("/admin/").status_code == 302


def test_right_code_with_wrong_password_is_refused_and_recorded(client, security_admin):
    device = authenticator(security_admin)
    response = client.post(
        "/admin/login/",
        {
            "username": security_admin.username,
            "password": "wrong-password",
            "otp_token": current_token(device),
        },
    )
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
    event = AuditEvent.objects.get(verb="login_failed")
    assert (event.subject, event.outcome) == (security_admin.username, "failure")
    assert "wrong-password" not in event.canonical()


def test_admin_changes_are_recorded(client, security_admin, subject):
    otp_login(client, security_admin)
    response = client.post(
        f"/admin/portal/user/{subject.pk}/change/",
        {
            "username": subject.username,
            "email": "new@example.test",
            "phone": subject.phone,
            "status": "active",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "first_name": "",
            "last_name": "",
            "department": "",
            "title": "",
            "employee_id": "",
            "manager": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(verb="admin_change")
    assert event.actor == security_admin.username
    assert event.data["object"] == subject.username
    assert event.data["model"] == "user"
    subject.refresh_from_db()
    assert subject.email == "new@example.test"
    assert subject.contact_changed_at is not None


def test_after_re_enrolment_the_new_authenticator_opens_the_admin(client, security_admin):
    old = authenticator(security_admin)
    new = factor_enroll(user=security_admin, method="totp").device
    assert login(client, security_admin, otp_token=current_token(new)).status_code == 302
    assert client.get("/admin/").status_code == 200
    client.logout()
    assert login(client, security_admin, otp_token=current_token(old)).status_code == 200
    assert client.get("/admin/").status_code == 302


def test_no_answer_says_the_password_was_right(client, security_admin):
    device = authenticator(security_admin)
    answers = [
        login(client, security_admin, otp_token=wrong_token(device)),  # right password, wrong code
        login(client, security_admin),  # right password, no code
        client.post(
            "/admin/login/",
            {"username": security_admin.username, "password": "not-it", "otp_token": wrong_token(device)},
        ),
    ]
    assert len({str(answer.context["form"].errors) for answer in answers}) == 1
    assert not EmailDevice.objects.exists()  # no code is ever mailed at sign-in


@pytest.mark.parametrize("url", ["/admin/login/", "/me/login/"])
def test_a_right_password_with_a_wrong_code_gets_the_page_a_wrong_password_gets(client, security_admin, url):
    # django-otp would show the password again, the person's devices and a challenge button,
    # but only after a right password: the page itself would tell a guesser it was right.
    device = authenticator(security_admin)
    code = wrong_token(device)

    def page(password: str) -> str:
        response = client.post(
            url, {"username": security_admin.username, "password": password, "otp_token": code}
        )
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())

    right = page(PASSWORD)
    assert PASSWORD not in right
    assert right == page("wrong-password")
