"""The auditor's dashboard on the admin index: what was verified, what was
prevented, and the state of the chain, drawn as server-side SVG (no script,
no network). Figures come from audit.metrics, like the API's."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from audit.metrics import (
    ACTION_EXECUTED,
    CASE_OPENED,
    CASE_VERIFIED,
    PREVENTION_VERBS,
    PUSH_REPORTED,
    SUBJECT_FAILURES,
    Metrics,
    metrics_summary,
)
from audit.periods import Period
from audit.selectors import last_chain_verification
from policies.models import Grant

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
CACHE_SECONDS = 60
VERIFIED, PREVENTED, FAILED = "#2e7d32", "#c62828", "#ef6c00"

CHART_WIDTH = 720
LABEL_WIDTH = 150
ROW_HEIGHT = 22
COLUMNS_HEIGHT = 200


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"
    link: str = ""


@dataclass
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False


def columns_chart(title: str, days: list[dict[str, Any]]) -> Chart:
    """Verified and prevented side by side, one pair of columns a day."""
    top, bottom = 16, 24
    plot = COLUMNS_HEIGHT - top - bottom
    peak = max((max(d["verified"], d["prevented"]) for d in days), default=0)
    chart = Chart(
        title, CHART_WIDTH, COLUMNS_HEIGHT, legend=[("verified", VERIFIED), ("prevented", PREVENTED)]
    )
    chart.empty = peak == 0
    slot = (CHART_WIDTH - 70) / max(len(days), 1)
    width = max(slot / 2 - 1, 1)
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = 40 + i * slot
        for offset, (series, colour) in enumerate((("verified", VERIFIED), ("prevented", PREVENTED))):
            value = day[series]
            height = plot * value / peak if peak else 0
            chart.bars.append(
                Bar(
                    x + offset * width,
                    top + plot - height,
                    width,
                    height,
                    colour,
                    f"{day['day']}: {value} {series}",
                )
            )
        if i % label_every == 0:
            chart.labels.append(
                Label(x, COLUMNS_HEIGHT - 6, date.fromisoformat(day["day"]).strftime("%d %b"))
            )
    chart.labels.append(Label(36, top + 4, str(peak), "end"))
    chart.labels.append(Label(36, top + plot, "0", "end"))
    return chart


Row = tuple[str, list[tuple[str, str, int]], str]


def rows_chart(title: str, rows: list[Row]) -> Chart:
    """Horizontal bars: one row per (label, [(series, colour, value)...], link)."""
    series_count = max((len(values) for _, values, _ in rows), default=1)
    band = ROW_HEIGHT * series_count + 8
    chart = Chart(title, CHART_WIDTH, max(band * len(rows), ROW_HEIGHT) + 8)
    peak = max((value for _, values, _ in rows for _, _, value in values), default=0)
    chart.empty = peak == 0
    seen: dict[str, str] = {}
    plot = CHART_WIDTH - LABEL_WIDTH - 60
    for i, (label, values, link) in enumerate(rows):
        y = 4 + i * band
        chart.labels.append(Label(LABEL_WIDTH - 6, y + band / 2, label, "end", link))
        for j, (series, colour, value) in enumerate(values):
            seen.setdefault(series, colour)
            length = plot * value / peak if peak else 0
            bar_y = y + j * ROW_HEIGHT
            chart.bars.append(
                Bar(LABEL_WIDTH, bar_y, length, ROW_HEIGHT - 4, colour, f"{label}: {value} {series}")
            )
            chart.labels.append(Label(LABEL_WIDTH + length + 4, bar_y + ROW_HEIGHT / 2, str(value)))
    chart.legend = list(seen.items())
    return chart


def _outcome_rows(
    slices: list[dict[str, Any]], dimension: str, window: dict[str, str], limit: int = 8
) -> list[Row]:
    return [
        (
            str(row["key"] or "—"),
            [("verified", VERIFIED, row["verified"]), ("prevented", PREVENTED, row["prevented"])],
            _changelist(**{dimension: row["key"]}, **window) if row["key"] else "",
        )
        for row in slices[:limit]
    ]


def _changelist(**params: str) -> str:
    return f"{reverse('admin:audit_auditevent_changelist')}?{urlencode(params)}"


def dashboard_context(days: int) -> dict[str, Any]:
    """Figures up to the end of the current minute, computed once a minute: on
    a busy desk 90 days of metrics take seconds, and the home page is hit often."""
    until = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    period = Period(until - timedelta(days=days), until)
    key = f"vigil:dashboard:{days}:{until:%Y%m%d%H%M}"
    metrics: Metrics | None = cache.get(key)
    if metrics is None:
        metrics = metrics_summary(period)
        cache.set(key, metrics, CACHE_SECONDS)
    window = {"at__gte": period.since.isoformat(), "at__lt": period.until.isoformat()}
    totals = metrics.totals
    gap = metrics.trust_gap
    tiles = [
        ("Cases opened", totals.opened, _changelist(verb=CASE_OPENED, **window)),
        ("Verified", totals.verified, _changelist(verb=CASE_VERIFIED, **window)),
        ("Actions executed", totals.executed, _changelist(verb=ACTION_EXECUTED, **window)),
        ("Prevented", totals.prevented, _changelist(verb__in=",".join(PREVENTION_VERBS), **window)),
        ("Impersonation reports", totals.reported, _changelist(verb=PUSH_REPORTED, **window)),
    ]
    return {
        "days": days,
        "periods": PERIODS,
        "period": period,
        "tiles": tiles,
        "prevented": metrics.prevented,
        "trust_gap": gap,
        "trust_gap_percent": None if gap.share is None else round(gap.share * 100, 1),
        "median_minutes": (
            None
            if metrics.median_seconds_to_verify is None
            else round(metrics.median_seconds_to_verify / 60, 1)
        ),
        "chain": last_chain_verification(),
        "per_day": columns_chart("Verified and prevented per day", metrics.per_day),
        "by_channel": rows_chart("By contact channel", _outcome_rows(metrics.by_channel, "channel", window)),
        "by_action": rows_chart("By action", _outcome_rows(metrics.by_action, "action", window)),
        "top_subjects": rows_chart(
            "Subjects with the most failures",
            [
                (
                    row["subject"],
                    [("failures", FAILED, row["failures"])],
                    _changelist(subject=row["subject"], verb__in=",".join(SUBJECT_FAILURES), **window),
                )
                for row in metrics.top_failing_subjects
            ],
        ),
    }


def access_attention(user: Any) -> list[tuple[str, int, str]]:
    """Grants an operator must act on. Counted live, not cached: whoever just fixed
    a failing removal expects to see it gone."""
    if not user.has_perm("policies.view_grant"):
        return []
    changelist = reverse("admin:policies_grant_changelist")
    return [
        (
            "access removals failing",
            Grant.objects.removal_failing().count(),
            f"{changelist}?attention=removal_failing",
        ),
        ("manual steps waiting", Grant.objects.manual_waiting().count(), f"{changelist}?attention=manual"),
    ]


def dashboard_days(raw: str | None) -> int:
    try:
        days = int(raw or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return days if days in PERIODS else DEFAULT_DAYS
