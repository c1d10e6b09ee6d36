from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from verification.factors import factor_enroll

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def business_hours(time_machine):
    """Inside business hours on a weekday, so the off-hours rule stays quiet."""
    time_machine.move_to(TUESDAY_NOON, tick=False)


@pytest.fixture
def enrolled(subject, manager):
    """Subject and manager with every factor, enrolled long enough ago to count."""
    devices = {}
    with time_machine.travel(timezone.now() - timedelta(days=30), tick=False):
        for method in ("totp", "email", "sms", "push", "backup_codes"):
            devices[method] = factor_enroll(user=subject, method=method)
        factor_enroll(user=manager, method="push")
    return devices


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def api_as():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def open_case(api, subject, enrolled, default_policy):
    """A password reset case for the subject, opened by phone at tier 2 (Elevated)."""

    def open_(action="password_reset", channel="walk_in", **extra):
        response = api.post(
            "/api/v1/verifications/",
            {"subject": subject.username, "action": action, "channel": channel, "ticket": "INC-1", **extra},
            format="json",
        )
        assert response.status_code == 201, response.json()
        return response.json()

    return open_


@pytest.fixture
def approve_by_push(api, api_as, subject):
    """The agent pushes, the subject types the number in: the case's one factor passes."""

    def approve(case_id: int) -> dict:
        push = api.post(
            f"/api/v1/verifications/{case_id}/challenges/", {"method": "push"}, format="json"
        ).json()
        answer = api_as(subject).post(
            f"/api/v1/me/challenges/{push['id']}/",
            {"decision": "approve", "number": push["match_number"]},
            format="json",
        )
        assert answer.json()["state"] == "passed", answer.json()
        return push

    return approve
