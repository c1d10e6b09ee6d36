"""Move backup codes off django-otp's StaticDevice, which keeps them in clear, onto
ours, which keeps only a keyed hash. Reversed, the devices go back without their
codes (a hash cannot give a code back): their owners need new ones."""

from django.db import migrations

from verification.migrations._device_move import DEVICE_FIELDS, move_devices
from verification.models import backup_code_digest

LEGACY = ("otp_static", "StaticDevice")
OURS = ("verification", "BackupCodeDevice")


def _hash_codes(apps, old, new):
    backup_code = apps.get_model("verification", "BackupCode")
    backup_code.objects.bulk_create(
        backup_code(device=new, digest=backup_code_digest(token.token)) for token in old.token_set.all()
    )


def forward(apps, schema_editor):
    move_devices(apps, LEGACY, OURS, DEVICE_FIELDS, _hash_codes)


def backward(apps, schema_editor):
    move_devices(apps, OURS, LEGACY, DEVICE_FIELDS)


class Migration(migrations.Migration):
    dependencies = [
        ("verification", "0004_encrypt_totp_seeds"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(forward, backward)]
