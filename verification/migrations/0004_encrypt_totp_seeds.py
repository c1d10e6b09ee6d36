"""Move enrolled authenticators off django-otp's TOTPDevice, which keeps the seed in
clear, onto ours, which keeps it encrypted. Reversible: the seed decrypts back."""

from django.db import migrations

from verification.migrations._device_move import DEVICE_FIELDS, move_devices

TOTP_FIELDS = (*DEVICE_FIELDS, "key", "step", "t0", "digits", "tolerance", "drift", "last_t")
LEGACY = ("otp_totp", "TOTPDevice")
OURS = ("verification", "AuthenticatorDevice")


def forward(apps, schema_editor):
    move_devices(apps, LEGACY, OURS, TOTP_FIELDS)


def backward(apps, schema_editor):
    move_devices(apps, OURS, LEGACY, TOTP_FIELDS)


class Migration(migrations.Migration):
    dependencies = [
        ("verification", "0003_secrets_at_rest"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(forward, backward)]
