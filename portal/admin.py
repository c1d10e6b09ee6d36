from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py issue_api_token`; here they are only listed and revoked."""

    list_display = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
