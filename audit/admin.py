"""The auditor's admin: read-only changelists that stay fast on millions of rows,
streaming exports of exactly what is filtered, and each object's audit timeline.

`EvidenceAdmin` and `AuditTimelineMixin` are for any app's evidence models
(verification cases, challenges, access requests, grants):

    class VerificationCaseAdmin(AuditTimelineMixin, EvidenceAdmin):
        readonly_fields = (..., "audit_timeline")
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast
from urllib.parse import parse_qsl

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.export import FORMATS, default_fields, export_response
from audit.models import AuditEvent
from audit.selectors import NEWEST_FIRST, distinct_values, events_for
from audit.services import record

COUNT_PAGES = 100


class BoundedCountPaginator(Paginator):
    """Counts at most COUNT_PAGES pages of rows, never the whole table: a
    COUNT(*) over millions of rows is what makes audit changelists crawl. Past
    that, the auditor narrows with filters or dates."""

    @cached_property
    def count(self) -> int:
        cap = COUNT_PAGES * self.per_page
        # Unordered: any cap + 1 matching rows will do, so the database may stop at the first it finds.
        found = cast(QuerySet[Any], self.object_list).order_by()[: cap + 1].count()
        self.capped = found > cap
        return min(found, cap)

    capped = False


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The values of an indexed column, read by walking its index (see
    audit.selectors.distinct_values) rather than `SELECT DISTINCT` over the table."""

    def __init__(
        self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        # The parent left a lazy DISTINCT queryset here; it is never evaluated.
        self.lookup_choices = distinct_values(field.model, field.name)  # type: ignore[assignment]


class TextInputFilter(admin.SimpleListFilter):
    """An exact-match box for a column with too many values to list (usernames)."""

    template = "admin/audit/input_filter.html"
    field_name = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(**{self.field_name: value}) if value else queryset

    def choices(self, changelist: Any) -> Any:
        query = changelist.get_query_string(remove=[self.parameter_name])
        yield {"keep": parse_qsl(query.lstrip("?")), "value": self.value() or ""}


class ActorFilter(TextInputFilter):
    title = "actor (agent)"
    parameter_name = field_name = "actor"


class SubjectFilter(TextInputFilter):
    title = "subject"
    parameter_name = field_name = "subject"


class PeriodFilter(admin.SimpleListFilter):
    """Quick periods over the admin's `date_hierarchy` field ("what was blocked last month")."""

    title = "period"
    parameter_name = "period"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.model_admin = model_admin
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
            ("this_month", "This month"),
            ("last_month", "Last month"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        bounds = period_bounds(self.value() or "", timezone.now())
        if bounds is None:
            return queryset
        field = self.model_admin.date_hierarchy
        return queryset.filter(**{f"{field}__gte": bounds[0], f"{field}__lt": bounds[1]})


def period_bounds(name: str, now: datetime) -> tuple[datetime, datetime] | None:
    local = timezone.localtime(now)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if name == "24h":
        return now - timedelta(hours=24), now
    if name == "7d":
        return now - timedelta(days=7), now
    if name == "30d":
        return now - timedelta(days=30), now
    if name == "this_month":
        return month_start, now
    if name == "last_month":
        previous = (month_start - timedelta(days=1)).replace(day=1)
        return previous, month_start
    return None


def _has_nul(request: HttpRequest) -> bool:
    """PostgreSQL refuses NUL in text; Django would only find out when the query runs (a 500)."""
    return any("\x00" in value for _, values in request.GET.lists() for value in values)


class EvidenceAdmin(admin.ModelAdmin):
    """Read-only changelist for big append-mostly tables, with CSV / JSON Lines
    export of the filtered rows (links above the list) or of a selection (actions).

    Constant queries per page: no full count, no facets, no `SELECT DISTINCT`
    for filters (use IndexedValuesFilter), a date hierarchy that reads at most
    one MIN/MAX. Subclasses set `list_select_related` for their foreign keys.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = BoundedCountPaginator
    # Rendering a row costs more than fetching it; 50 keeps a page well under 200 ms.
    list_per_page = 50
    change_list_template = "admin/audit/evidence_change_list.html"
    actions = ["export_selected_csv", "export_selected_jsonl"]
    # Columns of the export; field paths such as "subject__username" work.
    export_fields: Sequence[str] | None = None

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="{}_{}_export".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if _has_nul(request):
            return self._back_to_list()
        return super().changelist_view(request, extra_context)

    def _back_to_list(self) -> HttpResponseRedirect:
        """Where Django sends a changelist request it cannot filter by."""
        changelist_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return HttpResponseRedirect(f"{changelist_url}?e=1")

    def get_export_fields(self) -> Sequence[str]:
        return self.export_fields or default_fields(self.model)

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        """The changelist's own filters, search and date drill-down, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404(f"no export format {fmt!r}")
        if _has_nul(request):
            return self._back_to_list()
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return self._back_to_list()
        return self._export(request, changelist.queryset, fmt, scope=request.GET.urlencode())

    @admin.action(description="Export selected as CSV")
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
        return self._export(request, queryset, "csv", scope="selected")

    @admin.action(description="Export selected as JSON Lines")
    def export_selected_jsonl(self, request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
        return self._export(request, queryset, "jsonl", scope="selected")

    def _export(
        self, request: HttpRequest, queryset: QuerySet[Any], fmt: str, *, scope: str
    ) -> StreamingHttpResponse:
        # Who took which slice of the evidence is itself evidence.
        record(
            "admin_export",
            actor=request.user,  # type: ignore[arg-type]
            data={"model": self.opts.label_lower, "format": fmt, "filters": scope[:500]},
        )
        return export_response(queryset, self.get_export_fields(), fmt=fmt)


class AuditTimelineMixin:
    """Shows the audit events of an object: add "audit_timeline" to
    `readonly_fields`. Override `audit_timeline_targets` to merge related
    objects' events (an access request and its step-up case)."""

    def audit_timeline_targets(self, obj: Model) -> list[Model]:
        return [obj]

    @admin.display(description="Audit timeline")
    def audit_timeline(self, obj: Model | None) -> SafeString:
        events = events_for(self.audit_timeline_targets(obj)) if obj is not None else []
        return SafeString(render_to_string("admin/audit/timeline.html", {"events": events}))


def _search_terms(search_term: str) -> Q:
    term = search_term.strip()
    return Q(actor=term) | Q(subject=term) | Q(verb=term) | Q(request_id=term) | Q(hash=term)


@admin.register(AuditEvent)
class AuditEventAdmin(EvidenceAdmin):
    """Audit rows are evidence: filtered, read and exported here, never edited."""

    list_display = ("seq", "at", "verb", "outcome", "actor", "subject", "tier", "channel", "action", "target")
    list_filter = (
        PeriodFilter,
        "outcome",
        ("verb", IndexedValuesFilter),
        ("tier", IndexedValuesFilter),
        ("channel", IndexedValuesFilter),
        ("action", IndexedValuesFilter),
        ActorFilter,
        SubjectFilter,
    )
    ordering = NEWEST_FIRST
    # Sorting by an unindexed column would sort the whole table for one page.
    sortable_by = ("seq", "at")
    search_fields = ("actor",)
    search_help_text = "Exact match on actor, subject, verb, request id or hash."
    date_hierarchy = "at"
    readonly_fields = [*(f.name for f in AuditEvent._meta.fields), "integrity"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Exact, case-sensitive matches only: each is an index lookup, where
        # the admin's icontains would scan every row.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(_search_terms(search_term)), False

    @admin.display(description="target")
    def target(self, event: AuditEvent) -> str:
        if not event.target_type:
            return ""
        label = f"{event.target_type} {event.target_id}"
        try:
            url = reverse(f"admin:{event.target_type.replace('.', '_')}_change", args=[event.target_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="integrity")
    def integrity(self, event: AuditEvent) -> str:
        """This row alone: its hash, and its link to the row before. The whole
        chain is checked by `manage.py verify_audit_chain`."""
        content_ok = event.compute_hash() == event.hash
        previous = AuditEvent.objects.filter(seq=event.seq - 1).values_list("hash", flat=True).first()
        linked = event.seq == 1 or previous == event.prev_hash
        return format_html(
            "{} · {}",
            "content matches its hash" if content_ok else "CONTENT DOES NOT MATCH ITS HASH",
            "linked to the previous event" if linked else "NOT LINKED TO THE PREVIOUS EVENT",
        )
