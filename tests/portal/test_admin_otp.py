import pytest

from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.otp import current_token, otp_login

pytestmark = pytest.mark.django_db


def test_password_alone_never_opens_the_admin(client, security_admin):
    client.post("/admin/login/", {"username": security_admin.username, "password": PASSWORD})
    assert client.get("/admin/").status_code == 302
    # Even a session logged in by password alone is treated as not staff.
    client.force_login(security_admin)
    assert client.get("/admin/").status_code == 302


def test_password_and_totp_open_the_admin(client, security_admin):
    otp_login(client, security_admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert AuditEvent.objects.filter(verb="login", actor=security_admin.username).exists()


def test_wrong_totp_is_refused_and_recorded(client, security_admin):
    device = otp_login(client, security_admin)
    client.logout()
    wrong = f"{(int(current_token(device)) + 1) % 1_000_000:06d}"
    response = client.post(
        "/admin/login/", {"username": security_admin.username, "password": PASSWORD, "otp_token": wrong}
    )
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(verb="otp_failed", subject=security_admin.username).exists()


def test_failed_password_is_recorded_without_the_password(client, security_admin):
    client.post("/admin/login/", {"username": security_admin.username, "password": "wrong-password"})
    event = AuditEvent.objects.get(verb="login_failed")
    assert event.outcome == "failure"
    assert event.subject == security_admin.username
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
