from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    name = "portal"
    default = True
    verbose_name = "Portal"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from portal.models import User

        auditlog.register(User, exclude_fields=["password", "last_login"])


class PortalAdminConfig(admin_apps.AdminConfig):
    """The admin, with every staff login verified by OTP."""

    default = False

    default_site = "portal.admin_site.VigilAdminSite"
