"""Enrolment of factors (django-otp devices) for a user."""

from dataclasses import dataclass, field

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice

from audit.services import record
from verification.models import AuthenticatorDevice, BackupCodeDevice, PushDevice, SMSDevice

BACKUP_CODE_COUNT = 10


class EnrolmentError(Exception):
    pass


@dataclass
class Enrolment:
    device: Device
    # What the person enrolling must keep: the otpauth URI, or the backup codes.
    secrets_to_show: list[str] = field(default_factory=list)


def _enroll_totp(user: AbstractBaseUser) -> Enrolment:
    device = AuthenticatorDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return Enrolment(device, [device.config_url])


def _enroll_email(user: AbstractBaseUser) -> Enrolment:
    if not getattr(user, "email", ""):
        raise EnrolmentError(f"{user.get_username()} has no email address")
    return Enrolment(EmailDevice.objects.create(user=user, name="Email", confirmed=True))


def _enroll_sms(user: AbstractBaseUser) -> Enrolment:
    number = getattr(user, "phone", "")
    if not number:
        raise EnrolmentError(f"{user.get_username()} has no phone number")
    return Enrolment(SMSDevice.objects.create(user=user, name="SMS", number=number, confirmed=True))


def _enroll_push(user: AbstractBaseUser) -> Enrolment:
    return Enrolment(PushDevice.objects.create(user=user, name="Vigil portal", confirmed=True))


def _enroll_backup_codes(user: AbstractBaseUser) -> Enrolment:
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    return Enrolment(device, device.issue_codes(BACKUP_CODE_COUNT))


ENROLLERS = {
    "totp": _enroll_totp,
    "email": _enroll_email,
    "backup_codes": _enroll_backup_codes,
    "sms": _enroll_sms,
    "push": _enroll_push,
}


@transaction.atomic
def factor_enroll(*, user: AbstractBaseUser, method: str) -> Enrolment:
    enroller = ENROLLERS.get(method)
    if enroller is None:
        raise EnrolmentError(f"unknown method {method!r} (known: {', '.join(ENROLLERS)})")
    enrolment = enroller(user)
    record("factor_enrolled", subject=user, data={"method": method, "device": enrolment.device.persistent_id})
    return enrolment
