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
    # Models added by later migrations get their permissions from the sync after `migrate`.
    sync_role_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("audit", "0002_chain_head"),
        ("auditlog", "0017_add_actor_email"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_email", "0006_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("policies", "0002_policy_version_row"),
        ("verification", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
