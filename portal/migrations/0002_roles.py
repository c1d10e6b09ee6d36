from django.db import migrations

from portal.roles import sync_role_permissions


def create_roles(apps, schema_editor):
    sync_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("audit", "0002_chain_head"),
        ("auditlog", "__latest__"),
        ("otp_totp", "__latest__"),
        ("otp_email", "__latest__"),
        ("otp_static", "__latest__"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
