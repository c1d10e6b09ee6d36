from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit rows are evidence, nobody edits them here."""

    list_display = ("seq", "at", "verb", "outcome", "actor", "subject", "tier", "channel", "action", "ip")
    list_filter = ("outcome", "verb", "tier", "channel", "action")
    search_fields = ("=actor", "=subject", "verb", "=request_id")
    date_hierarchy = "at"
    # A COUNT(*) over millions of rows on every page load is what makes audit admins crawl.
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
