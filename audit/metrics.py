"""What was verified and what was prevented, per period — the one source of the
figures shown by the API, the admin dashboard and the evidence bundle.

Everything is computed from audit events alone, never from the case tables:
audit imports no app of ours, and a figure derived from the hash-chained
record can be recomputed by anyone holding the exported events. The verbs
below are the ones verification records (README "Audit and evidence").
"""

import statistics
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from audit.models import AuditEvent, Outcome
from audit.periods import Period
from audit.selectors import events_between

CASE_OPENED = "case_opened"
CASE_VERIFIED = "case_verified"
CASE_FAILED = "case_failed"
CASE_BLOCKED = "case_blocked"
CASE_EXPIRED = "case_expired"
CASE_CANCELLED = "case_cancelled"
CASE_ESCALATED = "case_escalated"
PUSH_REPORTED = "push_reported"
ACTION_EXECUTED = "action_executed"
ACTION_BLOCKED = "action_blocked"
CHALLENGE_FAILED = "challenge_failed"
CHALLENGE_DENIED = "challenge_denied"

# verb → the Tally field it counts.
COUNTED = {
    CASE_OPENED: "opened",
    CASE_VERIFIED: "verified",
    CASE_FAILED: "failed",
    CASE_BLOCKED: "blocked",
    CASE_EXPIRED: "expired",
    CASE_CANCELLED: "cancelled",
    CASE_ESCALATED: "escalated",
    ACTION_EXECUTED: "executed",
    ACTION_BLOCKED: "refused",
    PUSH_REPORTED: "reported",
}
# The events after which a case is settled one way or the other.
CONCLUDING = (
    CASE_VERIFIED,
    CASE_FAILED,
    CASE_BLOCKED,
    CASE_EXPIRED,
    CASE_CANCELLED,
    CASE_ESCALATED,
    PUSH_REPORTED,
    ACTION_EXECUTED,
)
SUBJECT_FAILURES = (
    CHALLENGE_FAILED,
    CHALLENGE_DENIED,
    CASE_FAILED,
    CASE_BLOCKED,
    ACTION_BLOCKED,
    PUSH_REPORTED,
)
SERVICE_DESK = "service_desk"
TOP_SUBJECTS = 10


def prevention_kind(verb: str, outcome: str) -> str | None:
    """Which refusal, if any, an event records: something risky was asked for
    and did not happen because Vigil said no."""
    if verb == CASE_BLOCKED:
        return "blocked_by_policy"
    if verb == CASE_FAILED or (verb == CASE_ESCALATED and outcome == Outcome.FAILURE):
        return "failed_verification"
    if verb == PUSH_REPORTED:
        return "reported_by_subject"
    if verb == ACTION_BLOCKED:
        return "refused_at_execution"
    return None


PREVENTION_VERBS = (CASE_BLOCKED, CASE_FAILED, CASE_ESCALATED, PUSH_REPORTED, ACTION_BLOCKED)


@dataclass
class Tally:
    """Counts of one slice (the whole period, one action, one channel...)."""

    opened: int = 0
    verified: int = 0
    failed: int = 0
    blocked: int = 0
    expired: int = 0
    cancelled: int = 0
    escalated: int = 0
    executed: int = 0
    refused: int = 0
    reported: int = 0
    prevented: int = 0

    def add(self, verb: str, outcome: str, n: int) -> None:
        name = COUNTED.get(verb)
        if name:
            setattr(self, name, getattr(self, name) + n)
        if prevention_kind(verb, outcome):
            self.prevented += n


@dataclass
class TrustGap:
    """Service-desk cases (opened on a caller's word) in the period: of those
    settled, the share that never verified."""

    cases: int = 0
    concluded: int = 0
    verified: int = 0
    not_verified: int = 0
    share: float | None = None


@dataclass
class Metrics:
    since: str
    until: str
    totals: Tally
    prevented: dict[str, int]
    median_seconds_to_verify: float | None
    trust_gap: TrustGap
    by_action: list[dict[str, Any]]
    by_tier: list[dict[str, Any]]
    by_channel: list[dict[str, Any]]
    by_agent: list[dict[str, Any]]
    per_day: list[dict[str, Any]]
    top_failing_subjects: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        totals = body.pop("totals")
        body["cases"] = {
            name: totals[name]
            for name in ("opened", "verified", "failed", "blocked", "expired", "cancelled", "escalated")
        }
        body["actions"] = {
            "executed": totals["executed"],
            "prevented": totals["prevented"],
            "refused_at_execution": totals["refused"],
        }
        body["impersonation_reports"] = totals["reported"]
        return body


def metrics_summary(period: Period) -> Metrics:
    """1. Count the case and action verbs of the period by action, tier and
       channel (one grouped query), and by agent (the actor of each case's
       `case_opened`).
    2. Per day: verified against prevented.
    3. Median time from `case_opened` to `case_verified`.
    4. The trust gap, and the subjects with the most failures."""
    events = events_between(period.since, period.until)
    totals = Tally()
    prevented = dict.fromkeys(
        ("blocked_by_policy", "failed_verification", "reported_by_subject", "refused_at_execution"), 0
    )
    slices: dict[str, dict[Any, Tally]] = {"action": {}, "tier": {}, "channel": {}}
    grouped = (
        events.filter(verb__in=COUNTED)
        .order_by()
        .values("verb", "outcome", "action", "tier", "channel")
        .annotate(n=Count("id"))
    )
    for row in grouped:
        verb, outcome, n = row["verb"], row["outcome"], row["n"]
        totals.add(verb, outcome, n)
        kind = prevention_kind(verb, outcome)
        if kind:
            prevented[kind] += n
        for dimension, tallies in slices.items():
            tallies.setdefault(row[dimension], Tally()).add(verb, outcome, n)

    agents: dict[Any, Tally] = {}
    for row in (
        events.filter(verb__in=COUNTED)
        .exclude(target_id="")
        .annotate(agent=Subquery(_case_opened().values("actor")[:1]))
        .order_by()
        .values("agent", "verb", "outcome")
        .annotate(n=Count("id"))
    ):
        agents.setdefault(row["agent"], Tally()).add(row["verb"], row["outcome"], row["n"])

    return Metrics(
        since=period.since.isoformat(),
        until=period.until.isoformat(),
        totals=totals,
        prevented=prevented,
        median_seconds_to_verify=_median_seconds_to_verify(events),
        trust_gap=_trust_gap(events),
        by_action=_rows(slices["action"]),
        by_tier=_rows(slices["tier"]),
        by_channel=_rows(slices["channel"]),
        by_agent=_rows(agents),
        per_day=_per_day(events, period),
        top_failing_subjects=[
            {"subject": row["subject"], "failures": row["n"]}
            for row in events.filter(verb__in=SUBJECT_FAILURES)
            .exclude(subject="")
            .order_by()
            .values("subject")
            .annotate(n=Count("id"))
            .order_by("-n", "subject")[:TOP_SUBJECTS]
        ],
    )


def _case_opened() -> Any:
    """The `case_opened` event of the outer event's case."""
    return AuditEvent.objects.filter(
        target_type=OuterRef("target_type"), target_id=OuterRef("target_id"), verb=CASE_OPENED
    ).order_by("seq")


def _rows(tallies: dict[Any, Tally]) -> list[dict[str, Any]]:
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].opened, -item[1].prevented, str(item[0])))
    return [{"key": key if key != "" else None, **asdict(tally)} for key, tally in ordered]


def _median_seconds_to_verify(events: Any) -> float | None:
    pairs = (
        events.filter(verb=CASE_VERIFIED)
        .annotate(opened_at=Subquery(_case_opened().values("at")[:1]))
        .values_list("at", "opened_at")
    )
    durations = [(verified - opened).total_seconds() for verified, opened in pairs.iterator() if opened]
    return round(statistics.median(durations), 1) if durations else None


def _trust_gap(events: Any) -> TrustGap:
    same_case = AuditEvent.objects.filter(
        target_type=OuterRef("target_type"), target_id=OuterRef("target_id")
    )
    counts = events.filter(verb=CASE_OPENED, data__purpose=SERVICE_DESK).aggregate(
        cases=Count("id"),
        concluded=Count("id", filter=Exists(same_case.filter(verb__in=CONCLUDING))),
        verified=Count("id", filter=Exists(same_case.filter(verb=CASE_VERIFIED))),
    )
    gap = TrustGap(cases=counts["cases"], concluded=counts["concluded"], verified=counts["verified"])
    gap.not_verified = gap.concluded - gap.verified
    if gap.concluded:
        gap.share = round(gap.not_verified / gap.concluded, 4)
    return gap


def _per_day(events: Any, period: Period) -> list[dict[str, Any]]:
    tz = timezone.get_current_timezone()
    first = timezone.localtime(period.since, tz).date()
    last = timezone.localtime(period.until - timedelta(microseconds=1), tz).date()
    days: dict[date, dict[str, Any]] = {}
    day = first
    while day <= last:
        days[day] = {"day": day.isoformat(), "verified": 0, "prevented": 0}
        day += timedelta(days=1)
    rows = (
        events.filter(verb__in=(CASE_VERIFIED, *PREVENTION_VERBS))
        .annotate(day=TruncDate("at", tzinfo=tz))
        .order_by()
        .values("day", "verb", "outcome")
        .annotate(n=Count("id"))
    )
    for row in rows:
        bucket = days.get(row["day"])
        if bucket is None:
            continue
        if row["verb"] == CASE_VERIFIED:
            bucket["verified"] += row["n"]
        elif prevention_kind(row["verb"], row["outcome"]):
            bucket["prevented"] += row["n"]
    return list(days.values())
