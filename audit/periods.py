"""Reporting periods as auditors type them: `--since 2026-10-01 --until 2026-10-31`.

One parser for the API, the metrics, the admin and the evidence command, so
"until 2026-10-31" means the same everywhere: a bare date covers that whole
day; a date-time is an exact, exclusive bound.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

DEFAULT_DAYS = 30
# A period longer than this is almost always a typo (a year of 20260); it would
# also make the per-day series of the metrics needlessly long.
MAX_DAYS = 3660


class PeriodError(ValueError):
    """A bound that is not a date, or a period that ends before it starts."""


def parse_bound(value: str, *, end: bool, name: str) -> datetime:
    """`YYYY-MM-DD` → start of that day (or, for an end bound, start of the next);
    ISO 8601 date-time → itself, in the current time zone when it names none."""
    text = (value or "").strip()
    if not text:
        raise PeriodError(f"{name}: give a date (YYYY-MM-DD) or an ISO 8601 date-time")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return timezone.make_aware(datetime.combine(day, time.min))
        instant = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise PeriodError(
            f"{name}: {text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
        ) from exc
    if timezone.is_naive(instant):
        instant = timezone.make_aware(instant)
    return instant


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since >= self.until:
            raise PeriodError(
                f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})"
            )
        if self.until - self.since > timedelta(days=MAX_DAYS):
            raise PeriodError(f"a period may span at most {MAX_DAYS} days")

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, default_days: int = DEFAULT_DAYS) -> "Period":
        """Either bound may be left out: until defaults to now, since to
        `default_days` before until."""
        until_at = parse_bound(until, end=True, name="until") if until else timezone.now()
        since_at = (
            parse_bound(since, end=False, name="since") if since else until_at - timedelta(days=default_days)
        )
        return cls(since_at, until_at)
