from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    default = True
    verbose_name = "Portal"

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.contrib.auth.signals import user_logged_in

        from portal.models import User
        from portal.session_expiry import staff_session_start

        auditlog.register(User, exclude_fields=["password", "last_login"])
        post_migrate.connect(_sync_roles, sender=self)
        user_logged_in.connect(staff_session_start, dispatch_uid="staff_session_start")


def _sync_roles(**kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    from portal.roles import sync_role_permissions

    sync_role_permissions(Group, Permission)


class PortalAdminConfig(admin_apps.AdminConfig):
    """The admin, with every staff login verified by OTP."""

    default = False

    default_site = "portal.admin_site.VigilAdminSite"
