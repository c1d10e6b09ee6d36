"""A person's registered factors, as (method, device) pairs."""

from datetime import datetime, timedelta
from typing import Any

from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice

from verification.models import AuthenticatorDevice, BackupCodeDevice, PushDevice, SMSDevice
from verification.requirements import Method

DEVICE_METHODS: list[tuple[type[Device], Method]] = [
    (AuthenticatorDevice, Method.TOTP),
    (PushDevice, Method.PUSH),
    (SMSDevice, Method.SMS_OTP),
    (EmailDevice, Method.EMAIL_OTP),
    (BackupCodeDevice, Method.BACKUP_CODE),
]
METHOD_DEVICE = {method: model for model, method in DEVICE_METHODS}


def factors_of(user: Any, method: Method | None = None) -> list[tuple[Method, Device]]:
    """Confirmed devices of `user`, one query per device type."""
    pairs: list[tuple[Method, Device]] = []
    for model, device_method in DEVICE_METHODS:
        if method is None or method == device_method:
            pairs.extend(
                (device_method, device) for device in model.objects.filter(user=user, confirmed=True)
            )
    return pairs


def factor_usable_from(device: Device, user: Any, min_age_days: int, now: datetime) -> datetime | None:
    """When the factor starts to count under the age rule: its enrolment, and for a
    factor that reaches the person through their profile (SMS; an email factor
    without its own address) also the last change of their contact details (SIM
    swap, a mailbox swapped by a contact change)."""
    enrolled: datetime | None = getattr(device, "created_at", None)
    if enrolled is None:
        return None
    start = enrolled
    follows_profile = isinstance(device, SMSDevice) or (isinstance(device, EmailDevice) and not device.email)
    if follows_profile and user.contact_changed_at and user.contact_changed_at > start:
        start = user.contact_changed_at
    return start + timedelta(days=min_age_days)


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    return f"{'*' * max(len(number) - 2, 0)}{number[-2:]}"


def authenticator_of(user: Any) -> AuthenticatorDevice | None:
    """The authenticator app a person steps up with: their most recently enrolled one."""
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()
