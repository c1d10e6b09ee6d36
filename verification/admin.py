from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from verification.models import (
    AuthenticatorDevice,
    BackupCodeDevice,
    Challenge,
    Notice,
    PushDevice,
    SMSDevice,
    SubjectHold,
    VerificationCase,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence: shown, never edited here (flows change it through services)."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChallengeInline(admin.TabularInline):
    model = Challenge
    fields = (
        "method",
        "recipient",
        "state",
        "attempts",
        "max_attempts",
        "created_at",
        "sent_at",
        "answered_at",
        "delivery_error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(VerificationCase)
class VerificationCaseAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "action",
        "subject",
        "agent",
        "channel",
        "tier_level",
        "state",
        "console",
    )
    list_filter = ("state", "action", "channel", "tier_level", "purpose")
    list_select_related = ("subject", "agent")
    search_fields = ("=subject__username", "=agent__username", "=ticket")
    date_hierarchy = "created_at"
    exclude = ("requirements",)
    readonly_fields = (
        "subject",
        "agent",
        "action",
        "channel",
        "ticket",
        "purpose",
        "state",
        "decision",
        "tier_level",
        "created_at",
        "expires_at",
        "verified_at",
        "verified_until",
        "consumed_at",
        "closed_reason",
        "lost_factors",
        "usable_from",
        "execution_result",
    )
    inlines = [ChallengeInline]

    @admin.display(description="Console")
    def console(self, case: VerificationCase) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:console-case", args=[case.pk]))


@admin.register(Challenge)
class ChallengeAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "case", "method", "recipient", "state", "attempts", "delivery_error")
    list_filter = ("state", "method")
    list_select_related = ("case", "recipient")
    date_hierarchy = "created_at"
    # The secret's hash and the push number are not evidence anyone needs to read.
    exclude = ("secret_hash", "match_number")
    readonly_fields = (
        "case",
        "method",
        "device_id",
        "recipient",
        "state",
        "attempts",
        "max_attempts",
        "created_at",
        "expires_at",
        "sent_at",
        "answered_at",
        "delivery_error",
        "delivery_attempts",
    )


@admin.register(SubjectHold)
class SubjectHoldAdmin(admin.ModelAdmin):
    list_display = ("subject", "reason", "created_at", "until")
    list_select_related = ("subject",)
    raw_id_fields = ("subject",)


@admin.register(SMSDevice, PushDevice)
class FactorAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(AuthenticatorDevice, BackupCodeDevice)
class SecretKeepingFactorAdmin(FactorAdmin):
    """No TOTP seed, QR code or backup code here: they are shown once, to their owner, at
    enrolment (`enroll_factor`, the enrolment link), and never again."""

    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = ("created_at", "last_used_at")


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    """The outbox: what was sent to whom, and what is still waiting. No secret is
    stored here (one-time links are made when a message is sent)."""

    list_display = ("id", "created_at", "medium", "to", "headline", "state", "attempts", "sent_at", "error")
    list_filter = ("state", "medium")
    date_hierarchy = "created_at"
    search_fields = ("=to",)
    raw_id_fields = ("case",)
    exclude = ("claimed_until",)


# django-otp's own models keep seeds and codes in clear; factors live in ours
# (migration 0004 moved them), so their admins would only invite new plaintext ones.
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)
