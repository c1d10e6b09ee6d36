from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_otp.oath import totp
from rest_framework.test import APIClient

from audit.metrics import metrics_summary
from audit.periods import Period
from tests.audit.trail import DEC_1, NOV_1, CaseRef, event, november_trail
from verification.factors import factor_enroll

pytestmark = pytest.mark.django_db

NOVEMBER = Period(NOV_1, DEC_1)


def by_key(rows, key):
    return next(row for row in rows if row["key"] == key)


def test_case_and_action_counts_of_the_period():
    november_trail()
    metrics = metrics_summary(NOVEMBER).as_dict()
    assert metrics["cases"] == {
        "opened": 7,
        "verified": 3,
        "failed": 1,
        "blocked": 1,
        "expired": 1,
        "cancelled": 0,
        "escalated": 0,
    }
    assert metrics["actions"] == {"executed": 1, "prevented": 4, "refused_at_execution": 1}
    assert metrics["prevented"] == {
        "blocked_by_policy": 1,
        "failed_verification": 1,
        "reported_by_subject": 1,
        "refused_at_execution": 1,
    }
    assert metrics["impersonation_reports"] == 1


def test_median_time_to_verify_is_from_opening_to_verification():
    november_trail()
    assert metrics_summary(NOVEMBER).median_seconds_to_verify == 180.0


def test_trust_gap_counts_settled_service_desk_cases_that_never_verified():
    november_trail()
    gap = metrics_summary(NOVEMBER).trust_gap
    assert (gap.cases, gap.concluded, gap.verified, gap.not_verified) == (6, 5, 2, 3)
    assert gap.share == 0.6


def test_slices_by_action_tier_channel_and_agent():
    november_trail()
    metrics = metrics_summary(NOVEMBER)
    reset = by_key(metrics.by_action, "password_reset")
    assert (reset["opened"], reset["verified"], reset["executed"], reset["prevented"]) == (4, 2, 1, 2)
    assert by_key(metrics.by_tier, 4)["blocked"] == 1
    assert by_key(metrics.by_channel, "chat")["failed"] == 1
    agent_b = by_key(metrics.by_agent, "agent.b")
    # The refusal of case 5 counts for the agent who opened the case, not the one who tried.
    assert (agent_b["opened"], agent_b["blocked"], agent_b["reported"], agent_b["refused"]) == (3, 1, 1, 1)
    assert by_key(metrics.by_agent, "agent.a")["opened"] == 3


def test_per_day_series_covers_every_day_of_the_period():
    november_trail()
    days = {row["day"]: row for row in metrics_summary(NOVEMBER).per_day}
    assert len(days) == 30
    assert days["2026-11-02"] == {"day": "2026-11-02", "verified": 1, "prevented": 0}
    assert days["2026-11-06"] == {"day": "2026-11-06", "verified": 1, "prevented": 1}
    assert days["2026-11-03"]["prevented"] == 1
    assert days["2026-11-20"] == {"day": "2026-11-20", "verified": 0, "prevented": 0}


def test_top_failing_subjects():
    november_trail()
    top = metrics_summary(NOVEMBER).top_failing_subjects
    assert top[0] == {"subject": "bob", "failures": 4}
    assert {row["subject"] for row in top} == {"bob", "carol", "dave"}


def test_events_outside_the_period_do_not_count():
    november_trail()
    october = metrics_summary(Period(datetime(2026, 10, 1, tzinfo=UTC), NOV_1))
    assert october.totals.opened == 1
    assert october.totals.verified == 1
    assert october.median_seconds_to_verify == 120.0


def test_an_empty_period_has_zero_counts_and_no_ratios():
    metrics = metrics_summary(NOVEMBER)
    assert metrics.totals.opened == 0
    assert metrics.median_seconds_to_verify is None
    assert metrics.trust_gap.share is None
    assert metrics.by_action == []


@pytest.fixture
def service_desk(subject, agent, manager, default_policy):
    """A subject with an authenticator enrolled long enough ago to count, on a weekday noon."""
    with time_machine.travel(datetime(2026, 10, 20, 12, tzinfo=UTC), tick=False):
        device = factor_enroll(user=subject, method="totp").device
    traveller = time_machine.travel(datetime(2026, 11, 24, 12, tzinfo=UTC), tick=False)
    traveller.start()
    client = APIClient()
    client.force_authenticate(agent)
    yield client, device
    traveller.stop()


def test_metrics_follow_the_verbs_verification_really_records(service_desk, subject):
    """One case verified and executed, one refused: the figures come out of the
    events the verification services write, not out of this test's guesses."""
    api, device = service_desk
    opened = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "password_reset", "channel": "walk_in", "ticket": "INC-9"},
        format="json",
    ).json()
    challenge = api.post(
        f"/api/v1/verifications/{opened['id']}/challenges/", {"method": "totp"}, format="json"
    )
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    answer = api.post(f"/api/v1/challenges/{challenge.json()['id']}/answer/", {"code": code}, format="json")
    assert answer.json()["state"] == "passed"
    assert api.post(f"/api/v1/verifications/{opened['id']}/execute/", {}, format="json").status_code == 200
    assert api.post(f"/api/v1/verifications/{opened['id']}/execute/", {}, format="json").status_code == 409

    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    metrics = metrics_summary(Period(now - timedelta(days=1), now + timedelta(seconds=1)))
    assert (metrics.totals.opened, metrics.totals.verified, metrics.totals.executed) == (1, 1, 1)
    assert metrics.prevented["refused_at_execution"] == 1
    assert metrics.trust_gap.cases == metrics.trust_gap.concluded == metrics.trust_gap.verified == 1
    assert by_key(metrics.by_agent, "agent")["executed"] == 1
    assert metrics.median_seconds_to_verify == 0.0


def test_a_case_opened_before_the_period_counts_for_its_agent_and_its_time_to_verify():
    case = CaseRef(99)
    opened = datetime(2026, 10, 31, 23, 58, tzinfo=UTC)
    fields = {"subject": "zoe", "action": "mfa_reset", "channel": "phone", "tier": 3}
    event(opened, "case_opened", case, actor="agent.late", data={"purpose": "service_desk"}, **fields)
    event(opened + timedelta(minutes=3), "case_verified", case, **fields)
    metrics = metrics_summary(NOVEMBER)
    assert metrics.totals.opened == 0
    assert metrics.totals.verified == 1
    assert by_key(metrics.by_agent, "agent.late")["verified"] == 1
    assert metrics.median_seconds_to_verify == 180.0
    # The trust gap is about cases opened in the period.
    assert metrics.trust_gap.cases == 0


def test_trust_gap_is_as_recorded_by_the_end_of_the_period():
    case = CaseRef(98)
    opened = datetime(2026, 11, 30, 23, 55, tzinfo=UTC)
    event(opened, "case_opened", case, actor="agent.a", subject="yan", data={"purpose": "service_desk"})
    event(opened + timedelta(minutes=10), "case_failed", case, outcome="failure", subject="yan")
    gap = metrics_summary(NOVEMBER).trust_gap
    assert (gap.cases, gap.concluded, gap.share) == (1, 0, None)
    december = metrics_summary(Period(NOV_1, DEC_1 + timedelta(days=1))).trust_gap
    assert (december.concluded, december.not_verified, december.share) == (1, 1, 1.0)
