"""Secrets at rest: TOTP seeds encrypted under FIELD_ENCRYPTION_KEYS (rotatable),
backup codes, one-time codes, link tokens and API tokens kept only as hashes.
The database is read with raw SQL, the way someone holding a dump would."""

import base64
import re
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from portal.models import ApiToken
from tests.conftest import PASSWORD
from tests.otp import current_token, otp_login
from verification.challenges import challenge_answer, challenge_create, challenge_dispatch
from verification.encryption import SecretUnreadable
from verification.factors import factor_enroll
from verification.links import link_issue
from verification.models import AuthenticatorDevice, BackupCodeDevice, OneTimeLink

pytestmark = pytest.mark.django_db

OLD_KEY = django_settings.FIELD_ENCRYPTION_KEYS[0]
NEW_KEY = Fernet.generate_key().decode()


def stored_seeds() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, key FROM verification_authenticatordevice")
        return dict(cursor.fetchall())


def whole_database() -> str:
    """Every value of every table, as text."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(dump)


def test_the_seed_is_stored_encrypted_and_the_printed_uri_still_works(subject, capsys):
    call_command("enroll_factor", subject.username, "totp")
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    device = AuthenticatorDevice.objects.get(user=subject)
    [stored] = stored_seeds().values()
    assert device.key not in stored and secret not in stored
    assert bytes.fromhex(Fernet(OLD_KEY).decrypt(stored.encode()).decode()) == base64.b32decode(secret)
    assert device.verify_token(current_token(device))


def test_no_secret_is_anywhere_in_the_database(make_case, agent, subject, enrolled, sms_outbox):
    challenge = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    challenge_dispatch(challenge_id=challenge.pk)
    sms_code = re.search(r"Vigil code (\d{6})", sms_outbox()[-1]["body"]).group(1)
    link_token = link_issue(case=challenge.case, kind=OneTimeLink.Kind.PASSWORD_RESET)
    _, api_token = ApiToken.issue(agent)
    totp = enrolled["totp"]
    secrets = [
        totp.device.key,
        totp.secrets_to_show[0].split("secret=")[1].split("&")[0],
        *enrolled["backup_codes"].secrets_to_show,
        sms_code,
        link_token,
        api_token,
    ]
    dump = whole_database()
    # Whole values only: a 6-digit code may well occur inside some hex digest.
    assert [secret for secret in secrets if re.search(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", dump)] == []
    # The hashes are usable: the code read back passes, the link opens.
    assert challenge_answer(challenge=challenge, code=sms_code, actor=agent).state == "passed"
    assert OneTimeLink.objects.filter(token_hash=OneTimeLink.hash_token(link_token)).exists()


def test_a_backup_code_works_once_and_its_stored_hash_is_not_a_code(subject):
    enrolment = factor_enroll(user=subject, method="backup_codes")
    device = BackupCodeDevice.objects.get(pk=enrolment.device.pk)
    code = enrolment.secrets_to_show[0]
    stored_digest = device.codes.values_list("digest", flat=True).first()
    assert not device.verify_token(stored_digest)
    device.throttle_reset()
    assert device.verify_token(code.upper())
    device.throttle_reset()
    assert not device.verify_token(code)
    assert device.codes.count() == len(enrolment.secrets_to_show) - 1


def test_backup_codes_survive_a_secret_key_rotation_kept_as_fallback(subject, settings):
    enrolment = factor_enroll(user=subject, method="backup_codes")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-0123456789-abcdefghijklmnop"
    assert BackupCodeDevice.objects.get(pk=enrolment.device.pk).verify_token(enrolment.secrets_to_show[0])


def test_rotation_re_encrypts_everything_and_the_old_key_can_go(client, security_admin, subject, settings):
    factor_enroll(user=subject, method="totp")
    otp_login(client, security_admin)
    before = stored_seeds()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    call_command("rotate_encryption_key", "--batch-size", "1")

    after = stored_seeds()
    assert after.keys() == before.keys() and all(after[pk] != before[pk] for pk in before)
    for pk, token in after.items():
        assert Fernet(NEW_KEY).decrypt(token.encode()) == Fernet(OLD_KEY).decrypt(before[pk].encode())
    event = AuditEvent.objects.get(verb="encryption_key_rotated")
    assert event.actor == "rotate_encryption_key"
    assert event.data["verification.AuthenticatorDevice"] == {"rotated": 2, "already_current": 0}

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    client.logout()
    otp_login(client, security_admin)
    assert client.get("/admin/").status_code == 200
    device = AuthenticatorDevice.objects.get(user=subject)
    assert device.verify_token(current_token(device))


def test_a_second_rotation_changes_nothing(subject, settings, capsys):
    factor_enroll(user=subject, method="totp")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_encryption_key")
    rotated = stored_seeds()
    capsys.readouterr()

    call_command("rotate_encryption_key")

    assert stored_seeds() == rotated
    assert "0 re-encrypted, 1 already current" in capsys.readouterr().out


def test_a_seed_no_configured_key_opens_is_an_error_not_a_pass(client, security_admin, settings):
    device = factor_enroll(user=security_admin, method="totp").device
    code = current_token(device)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(SecretUnreadable, match=r"verification\.AuthenticatorDevice\.key: none of"):
        AuthenticatorDevice.objects.get(pk=device.pk)
    with pytest.raises(SecretUnreadable):
        client.post(
            "/admin/login/",
            {"username": security_admin.username, "password": PASSWORD, "otp_token": code},
        )


def test_rotation_without_the_old_key_stops_and_changes_nothing(subject, settings):
    factor_enroll(user=subject, method="totp")
    before = stored_seeds()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match="none of FIELD_ENCRYPTION_KEYS decrypts it; nothing was"):
        call_command("rotate_encryption_key")
    assert stored_seeds() == before
    assert not AuditEvent.objects.filter(verb="encryption_key_rotated").exists()


def test_no_key_at_all_refuses_to_store_a_seed(subject, settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS is empty"):
        factor_enroll(user=subject, method="totp")
    assert not stored_seeds()
