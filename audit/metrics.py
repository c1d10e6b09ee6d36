"""What was verified and what was prevented, per period — the one source of the
figures shown by the API, the admin dashboard and the evidence bundle.

Everything is computed from audit events alone, never from the case tables:
audit imports no app of ours, and a figure derived from the hash-chained
record can be recomputed by anyone holding the exported events. The verbs
below are the ones verification records (README "Audit and evidence").
"""

import statistics
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Count, Q
from django.db.models.fields.json import KT
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
    settled by the period's end, the share that never verified."""

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
       channel (one grouped query).
    2. Walk the period's case events once, case by case, for what needs the
       case's `case_opened`: the agent, the time to verify, the trust gap.
    3. Per day: verified against prevented; the subjects with the most failures."""
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
    cases = _cases(events)
    return Metrics(
        since=period.since.isoformat(),
        until=period.until.isoformat(),
        totals=totals,
        prevented=prevented,
        median_seconds_to_verify=_median_seconds_to_verify(cases),
        trust_gap=_trust_gap(cases),
        by_action=_rows(slices["action"]),
        by_tier=_rows(slices["tier"]),
        by_channel=_rows(slices["channel"]),
        by_agent=_rows(_by_agent(cases)),
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


@dataclass
class _Case:
    """What the period's events say about one case."""

    agent: str | None = None
    opened_at: datetime | None = None
    opened_in_period: bool = False
    service_desk: bool = False
    verified_at: datetime | None = None
    concluded: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)


def _cases(events: Any) -> dict[tuple[str, str], _Case]:
    """One streamed query over the period's case events (and one more for cases
    opened before the period). Correlated subqueries per event cost seconds on
    a month of a busy desk; this costs one index range scan."""
    cases: dict[tuple[str, str], _Case] = {}
    rows = (
        events.filter(verb__in={*COUNTED, *CONCLUDING})
        .exclude(target_id="")
        .annotate(purpose=KT("data__purpose"))
        .order_by()
        .values_list("target_type", "target_id", "verb", "outcome", "actor", "at", "purpose")
    )
    for target_type, target_id, verb, outcome, actor, at, purpose in rows.iterator(chunk_size=5000):
        case = cases.setdefault((target_type, target_id), _Case())
        if verb == CASE_OPENED:
            case.agent, case.opened_at, case.opened_in_period = actor, at, True
            case.service_desk = purpose == SERVICE_DESK
        elif verb == CASE_VERIFIED and (case.verified_at is None or at < case.verified_at):
            case.verified_at = at
        if verb in CONCLUDING:
            case.concluded = True
        if verb in COUNTED:
            case.events.append((verb, outcome))
    earlier = [key for key, case in cases.items() if not case.opened_in_period]
    for start in range(0, len(earlier), 500):
        chunk = earlier[start : start + 500]
        opened = AuditEvent.objects.filter(
            reduce(or_, (Q(target_type=t, target_id=i) for t, i in chunk)), verb=CASE_OPENED
        ).values_list("target_type", "target_id", "actor", "at")
        for target_type, target_id, actor, at in opened:
            case = cases[(target_type, target_id)]
            case.agent, case.opened_at = actor, at
    return cases


def _by_agent(cases: dict[tuple[str, str], _Case]) -> dict[Any, Tally]:
    agents: dict[Any, Tally] = {}
    for case in cases.values():
        tally = agents.setdefault(case.agent, Tally())
        for verb, outcome in case.events:
            tally.add(verb, outcome, 1)
    return agents


def _rows(tallies: dict[Any, Tally]) -> list[dict[str, Any]]:
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].opened, -item[1].prevented, str(item[0])))
    return [{"key": key if key != "" else None, **asdict(tally)} for key, tally in ordered]


def _median_seconds_to_verify(cases: dict[tuple[str, str], _Case]) -> float | None:
    durations = [
        (case.verified_at - case.opened_at).total_seconds()
        for case in cases.values()
        if case.verified_at and case.opened_at
    ]
    return round(statistics.median(durations), 1) if durations else None


def _trust_gap(cases: dict[tuple[str, str], _Case]) -> TrustGap:
    """As recorded by the end of the period: a case settled later counts as open."""
    desk = [case for case in cases.values() if case.opened_in_period and case.service_desk]
    gap = TrustGap(
        cases=len(desk),
        concluded=sum(case.concluded for case in desk),
        verified=sum(case.verified_at is not None for case in desk),
    )
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
