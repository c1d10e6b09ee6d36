import base64
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.oath import TOTP

from audit.models import AuditEvent
from verification.models import AuthenticatorDevice

pytestmark = pytest.mark.django_db


def test_totp_prints_an_rfc6238_uri_whose_codes_verify(subject, capsys):
    call_command("enroll_factor", subject.username, "totp")
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    parsed = urlparse(uri)
    params = {key: values[0] for key, values in parse_qs(parsed.query).items()}
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert (params["algorithm"], params["digits"], params["period"]) == ("SHA1", "6", "30")
    key = base64.b32decode(params["secret"])
    token = TOTP(key, step=30, digits=6).token()
    assert AuthenticatorDevice.objects.get(user=subject).verify_token(f"{token:06d}")
    assert AuditEvent.objects.filter(verb="factor_enrolled", subject=subject.username).exists()


def test_backup_codes_are_printed_one_a_line(subject, capsys):
    call_command("enroll_factor", subject.username, "backup_codes")
    codes = capsys.readouterr().out.strip().splitlines()[-10:]
    assert len(set(codes)) == 10
    assert all(code.isalnum() and len(code) >= 8 for code in codes)


def test_email_factor_needs_an_address(subject):
    subject.email = ""
    subject.save()
    with pytest.raises(CommandError, match="no email address"):
        call_command("enroll_factor", subject.username, "email")


def test_unknown_user_and_method_are_refused(subject):
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("enroll_factor", "ghost", "totp")
    with pytest.raises(CommandError):
        call_command("enroll_factor", subject.username, "carrier_pigeon")
