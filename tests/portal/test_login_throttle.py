"""Repeated failed sign-ins pause the admin and /me/ login forms, per username and per address."""

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from tests.otp import authenticator, current_token, wrong_token

pytestmark = pytest.mark.django_db

PAUSED = "Too many failed sign-in attempts"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    settings.LOGIN_FAILURES_PER_IP = 20
    settings.LOGIN_LOCKOUT_MINUTES = 15


def sign_in(client, username, password=PASSWORD, token="", url="/admin/login/", ip="10.0.0.1"):
    return client.post(url, {"username": username, "password": password, "otp_token": token}, REMOTE_ADDR=ip)


def fail(client, username, times, **extra):
    for _ in range(times):
        response = sign_in(client, username, password="wrong-password", **extra)
        assert response.status_code == 200 and PAUSED not in response.content.decode()


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_five_wrong_passwords_pause_the_login_even_for_the_right_password_and_code(client, security_admin):
    device = authenticator(security_admin)
    fail(client, security_admin.username, 5)
    response = sign_in(client, security_admin.username, token=current_token(device))
    assert response.status_code == 200
    page = response.content.decode()
    assert PAUSED in page and "try again in 15 minutes" in page
    assert not signed_in(client)
    locked = AuditEvent.objects.get(verb="login_locked")
    assert (locked.subject, locked.outcome, locked.data["scope"]) == (
        security_admin.username,
        "blocked",
        "username",
    )
    refused = AuditEvent.objects.get(verb="login_throttled")
    assert (refused.subject, refused.outcome, refused.ip) == (security_admin.username, "blocked", "10.0.0.1")


def test_a_paused_form_says_the_same_whether_the_password_is_right_or_wrong(client, security_admin):
    device = authenticator(security_admin)
    fail(client, security_admin.username, 5)
    failed_logins = AuditEvent.objects.filter(verb="login_failed").count()
    right = sign_in(client, security_admin.username, token=current_token(device)).context["form"].errors
    wrong = sign_in(client, security_admin.username, password="wrong-password", token="123456")
    assert right == wrong.context["form"].errors
    assert "OTP token" not in str(right)
    # The password is not even checked while the form is paused.
    assert AuditEvent.objects.filter(verb="login_failed").count() == failed_logins
    assert AuditEvent.objects.filter(verb="login_throttled").count() == 2


def test_the_pause_ends_after_the_lockout_period(client, security_admin, time_machine):
    time_machine.move_to("2026-11-24 12:00Z", tick=False)
    device = authenticator(security_admin)
    fail(client, security_admin.username, 5)
    time_machine.shift(timedelta(minutes=14))
    assert PAUSED in sign_in(client, security_admin.username, token=current_token(device)).content.decode()
    time_machine.shift(timedelta(minutes=2))
    assert sign_in(client, security_admin.username, token=current_token(device)).status_code == 302
    assert signed_in(client)


def test_wrong_codes_count_as_failures(client, security_admin):
    device = authenticator(security_admin)
    for _ in range(5):
        # django-otp answers "Invalid token", then its own growing delay: both are failures.
        response = sign_in(client, security_admin.username, token=wrong_token(device))
        assert response.status_code == 200 and PAUSED not in response.content.decode()
    assert AuditEvent.objects.filter(verb="login_failed").count() == 0
    assert PAUSED in sign_in(client, security_admin.username, token=current_token(device)).content.decode()


def test_signing_in_without_a_code_is_a_failure(client, security_admin):
    device = authenticator(security_admin)
    for _ in range(5):
        assert PAUSED not in sign_in(client, security_admin.username).content.decode()
    assert PAUSED in sign_in(client, security_admin.username, token=current_token(device)).content.decode()


def test_a_full_sign_in_clears_the_usernames_count(client, security_admin):
    device = authenticator(security_admin)
    fail(client, security_admin.username, 4)
    assert sign_in(client, security_admin.username, token=current_token(device)).status_code == 302
    client.logout()
    fail(client, security_admin.username, 4)
    assert sign_in(client, security_admin.username, token=current_token(device)).status_code == 302


def test_an_empty_password_does_not_clear_the_count(client, security_admin):
    device = authenticator(security_admin)
    fail(client, security_admin.username, 4)
    sign_in(client, security_admin.username, password="")
    fail(client, security_admin.username, 1)
    assert PAUSED in sign_in(client, security_admin.username, token=current_token(device)).content.decode()


def test_the_username_is_counted_whatever_its_case_and_from_any_address(client, security_admin):
    device = authenticator(security_admin)
    for number in range(5):
        sign_in(client, security_admin.username.upper(), password="wrong", ip=f"10.0.1.{number}")
    response = sign_in(client, security_admin.username, token=current_token(device), ip="10.0.2.1")
    assert PAUSED in response.content.decode()


def test_failures_from_one_address_across_usernames_pause_that_address_only(client, settings, security_admin):
    settings.LOGIN_FAILURES_PER_IP = 6
    device = authenticator(security_admin)
    for number in range(6):
        sign_in(client, f"guess{number}", password="wrong", ip="10.9.9.9")
    assert (
        PAUSED
        in sign_in(
            client, security_admin.username, token=current_token(device), ip="10.9.9.9"
        ).content.decode()
    )
    assert AuditEvent.objects.get(verb="login_locked").data["scope"] == "ip"
    assert (
        sign_in(client, security_admin.username, token=current_token(device), ip="10.8.8.8").status_code
        == 302
    )


def test_the_self_service_login_is_paused_too(client):
    person = UserFactory(username="employee")
    device = authenticator(person)
    fail(client, person.username, 5, url="/me/login/")
    response = sign_in(client, person.username, token=current_token(device), url="/me/login/")
    assert response.status_code == 200 and PAUSED in response.content.decode()
    assert client.get("/me/").status_code == 302
    assert AuditEvent.objects.filter(verb="login_throttled", subject="employee").count() == 1
