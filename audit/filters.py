"""The audit-event filters of CONTRACT ("Audit"), for django-filter."""

from datetime import datetime
from typing import Any

import django_filters
from django import forms

from audit.models import AuditEvent, Outcome
from audit.periods import PeriodError, parse_bound


class InstantField(forms.CharField):
    """`YYYY-MM-DD` or an ISO 8601 date-time (audit.periods); `end` makes a bare
    date mean the end of that day."""

    def __init__(self, *args: Any, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        kwargs.setdefault("max_length", 40)
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        try:
            return parse_bound(text, end=self.end, name="until" if self.end else "since")
        except PeriodError as exc:
            raise forms.ValidationError(str(exc), code="invalid_date") from exc


# A CharFilter so the schema says string: a bare date is accepted too, and empty means no bound.
class InstantFilter(django_filters.CharFilter):
    field_class = InstantField


class SmallIntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class PeriodForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("since must be before until", code="empty_period")
        return cleaned


class AuditEventFilter(django_filters.FilterSet):
    verb = django_filters.CharFilter(max_length=64)
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    subject = django_filters.CharFilter(max_length=150)
    actor = django_filters.CharFilter(max_length=150)
    tier = SmallIntegerFilter(min_value=0, max_value=32767)
    channel = django_filters.CharFilter(max_length=20)
    action = django_filters.CharFilter(max_length=40)
    since = InstantFilter(field_name="at", lookup_expr="gte", help_text="YYYY-MM-DD or ISO 8601, inclusive.")
    until = InstantFilter(
        field_name="at",
        lookup_expr="lt",
        end=True,
        help_text="YYYY-MM-DD (that whole day) or ISO 8601 date-time (exclusive).",
    )

    class Meta:
        model = AuditEvent
        fields = ["verb", "outcome", "subject", "actor", "tier", "channel", "action", "since", "until"]
        form = PeriodForm
