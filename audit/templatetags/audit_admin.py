"""Changelist pieces for big tables: a date drill-down and a paginator line that
do not scan the table (used by audit/templates/admin/audit/evidence_change_list.html)."""

import calendar
import datetime
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import pagination
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst

register = template.Library()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@register.inclusion_tag("admin/date_hierarchy.html")
def bounded_date_hierarchy(cl: Any) -> dict[str, Any]:
    """Django's drill-down lists the years, months or days that hold rows with
    `SELECT DISTINCT` over every matching row. This one offers the calendar
    between the first and last row instead: at most one MIN/MAX, read from
    the date column's index."""
    field = cl.date_hierarchy
    year_field, month_field, day_field = f"{field}__year", f"{field}__month", f"{field}__day"
    year, month, day = (_int(cl.params.get(name)) for name in (year_field, month_field, day_field))

    def link(filters: dict[str, Any]) -> str:
        return str(cl.get_query_string(filters, [f"{field}__"]))

    # Without a MIN/MAX (a year or month was picked), offer the calendar up to today.
    first, last = datetime.date.min, timezone.localdate()
    if not year:
        bounds = cl.queryset.aggregate(first=Min(field), last=Max(field))
        if bounds["first"] is None:
            return {"show": False}
        first, last = (timezone.localtime(bounds[key]).date() for key in ("first", "last"))
        if first.year == last.year:
            year = first.year
            if first.month == last.month:
                month = first.month
    if year and month and day:
        try:
            chosen = datetime.date(year, month, day)
        except ValueError:
            return {"show": False}
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        if not 1 <= month <= 12:
            return {"show": False}
        days = range(1, calendar.monthrange(year, month)[1] + 1)
        shown = [
            datetime.date(year, month, d) for d in days if first <= datetime.date(year, month, d) <= last
        ]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in shown
            ],
        }
    if year:
        months = [
            datetime.date(year, m, 1)
            for m in range(1, 13)
            if (first.year, first.month) <= (year, m) <= (last.year, last.month)
        ]
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(y)}), "title": str(y)} for y in range(first.year, last.year + 1)
        ],
    }


@register.inclusion_tag("admin/audit/bounded_pagination.html")
def bounded_pagination(cl: Any) -> dict[str, Any]:
    context = pagination(cl)
    context["capped"] = getattr(cl.paginator, "capped", False)
    return context
