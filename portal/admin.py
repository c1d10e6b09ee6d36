from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from audit.models import Outcome
from audit.services import record
from portal.models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "phone",
        "manager",
        "department",
        "is_privileged",
        "status",
        "is_staff",
    )
    list_filter = ("status", "is_privileged", "is_staff", "groups", "department")
    list_select_related = ("manager",)
    search_fields = ("username", "email", "first_name", "last_name", "employee_id")
    autocomplete_fields = ("manager",)
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        (
            "Organisation and contact",
            {
                "fields": (
                    "phone",
                    "manager",
                    "department",
                    "title",
                    "employee_id",
                    "is_privileged",
                    "status",
                    "contact_changed_at",
                )
            },
        ),
    )
    readonly_fields = ("contact_changed_at", "last_login", "date_joined")

    # A security admin manages people and their roles (groups), never above their own
    # reach: only a superuser makes superusers, hands out single permissions or edits one.
    SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        hidden = self.SUPERUSER_ONLY_FIELDS
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Nobody but a superuser sets someone's password here: a reset goes through a
        verified case (the password_reset action), so the admin is no way around it."""
        if not request.user.is_superuser:
            target = User.objects.filter(pk=id).first() if id.isdigit() else None
            record(
                "password_set_refused",
                outcome=Outcome.BLOCKED,
                actor=request.user.get_username(),
                subject=target,
                action="password_reset",
                data={"reason": "passwords are reset through a verified case"},
            )
            raise PermissionDenied("Passwords are reset through a verified case, not set in the admin.")
        return super().user_change_password(request, id, form_url)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py issue_api_token`; here they are only listed and revoked."""

    list_display = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
