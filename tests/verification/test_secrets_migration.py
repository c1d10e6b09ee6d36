"""The data migrations move factors enrolled before secrets were kept at rest off
django-otp's plaintext tables: seeds encrypted (and back), backup codes hashed."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_otp.oath import TOTP

from tests.factories import UserFactory
from verification.models import AuthenticatorDevice, BackupCodeDevice, Challenge

# django-otp's apps too, so their (plaintext) models are among the state's models.
LEGACY_APPS = [("otp_totp", "0003_add_timestamps"), ("otp_static", "0003_add_timestamps")]
BEFORE = [("verification", "0003_secrets_at_rest"), *LEGACY_APPS]
SEEDS_ENCRYPTED = [("verification", "0004_encrypt_totp_seeds"), *LEGACY_APPS]
CODES_HASHED = [("verification", "0005_hash_backup_codes"), *LEGACY_APPS]
SEED = "3132333435363738393031323334353637383930"  # RFC 6238 appendix B's key


def migrate_to(targets=None):
    """Migrate to `targets`, or to the latest state of every app; returns the models of then."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def raw_column(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")  # noqa: S608
        return [value for (value,) in cursor.fetchall()]


@pytest.fixture
def at_latest(transactional_db):
    yield
    migrate_to()


def test_plaintext_factors_are_moved_encrypted_and_hashed(at_latest):
    user = UserFactory(username="early.adopter")
    legacy = migrate_to(BEFORE)
    totp = legacy.get_model("otp_totp", "TOTPDevice").objects.create(
        user_id=user.pk, name="Phone", confirmed=True, key=SEED
    )
    static = legacy.get_model("otp_static", "StaticDevice").objects.create(user_id=user.pk, name="Codes")
    static.token_set.create(token="abcd2345")
    now = timezone.now()
    case = legacy.get_model("verification", "VerificationCase").objects.create(
        subject_id=user.pk, agent_id=user.pk, action="password_reset", channel="phone", expires_at=now
    )
    legacy.get_model("verification", "Challenge").objects.create(
        case=case,
        method="totp",
        device_id=f"otp_totp.totpdevice/{totp.pk}",
        max_attempts=3,
        expires_at=now,
        recipient_id=user.pk,
    )

    migrate_to(CODES_HASHED)

    assert raw_column("otp_totp_totpdevice", "key") == []
    assert raw_column("otp_static_statictoken", "token") == []
    [stored_seed] = raw_column("verification_authenticatordevice", "key")
    assert SEED not in stored_seed
    assert "abcd2345" not in raw_column("verification_backupcode", "digest")
    migrate_to()
    device = AuthenticatorDevice.objects.get(user=user)
    assert device.key == SEED and device.created_at == totp.created_at
    assert Challenge.objects.get().device_id == device.persistent_id
    assert device.verify_token(f"{TOTP(bytes.fromhex(SEED)).token():06d}")
    assert BackupCodeDevice.objects.get(user=user).verify_token("abcd2345")


def test_seeds_move_back_in_clear_when_the_migration_is_reversed(at_latest):
    user = UserFactory(username="early.adopter")
    migrated = migrate_to(SEEDS_ENCRYPTED)
    authenticators = migrated.get_model("verification", "AuthenticatorDevice").objects
    authenticators.create(user_id=user.pk, name="Phone", key=SEED)
    migrate_to(BEFORE)
    assert raw_column("otp_totp_totpdevice", "key") == [SEED]
    assert raw_column("verification_authenticatordevice", "key") == []
