"""Helpers to pass the admin's OTP step in tests, the way a person would."""

from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import User
from tests.conftest import PASSWORD


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def otp_login(client: Client, user: User) -> TOTPDevice:
    """Log `user` in through the OTP admin login form with password and a fresh TOTP."""
    device = TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True
    )
    response = client.post(
        "/admin/login/",
        {"username": user.username, "password": PASSWORD, "otp_token": current_token(device)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return device
