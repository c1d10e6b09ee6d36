from django.contrib.auth.management import create_permissions
from django.db import migrations

from portal.roles import sync_role_permissions


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so
    # this migration can hand them out.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_role_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("audit", "0002_chain_head"),
        ("auditlog", "__latest__"),
        ("otp_totp", "__latest__"),
        ("otp_email", "__latest__"),
        ("otp_static", "__latest__"),
        # Every app whose permissions the roles hand out, so a fresh database has them all.
        ("policies", "__latest__"),
        ("verification", "__latest__"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
