"""Helpers to pass the admin's OTP step in tests, the way a person would."""

import time

from django.test import Client
from django_otp.oath import totp

from portal.models import User
from tests.conftest import PASSWORD
from verification.factors import factor_enroll
from verification.models import AuthenticatorDevice


def authenticator(user: User) -> AuthenticatorDevice:
    """The authenticator app the login form checks (the newest), enrolled if missing."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()
    if device is None:
        device = factor_enroll(user=user, method="totp").device
        assert isinstance(device, AuthenticatorDevice)
    return device


def current_token(device: AuthenticatorDevice) -> str:
    """A code the device accepts now.

    django-otp refuses a time step it has already accepted (replay protection), so a
    second login within the same 30 s uses the next step, which its tolerance of one
    step still admits.
    """
    device.refresh_from_db()
    now_step = int((time.time() - device.t0) // device.step)
    target = max(now_step + device.drift, device.last_t + 1)
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=target - now_step)
    return f"{code:0{device.digits}d}"


def wrong_token(device: AuthenticatorDevice) -> str:
    return f"{(int(current_token(device)) + 1) % 10**device.digits:0{device.digits}d}"


def otp_login(client: Client, user: User) -> AuthenticatorDevice:
    """Log `user` in through the OTP admin login form with password and a fresh TOTP."""
    device = authenticator(user)
    response = client.post(
        "/admin/login/",
        {"username": user.username, "password": PASSWORD, "otp_token": current_token(device)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return device
