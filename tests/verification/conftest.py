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


# Service-level helpers: cases opened straight through verification, with
# requirements chosen by the test instead of the default policy.

DECISION = {
    "tier": {"level": 2, "name": "Elevated"},
    "reasons": ["Password reset: base tier 2"],
    "policy_version": "test-version",
    "blocked": False,
}
SUBJECT_METHODS = ("totp", "push", "sms_otp", "email_otp", "backup_code")


def make_requirements(**overrides):
    from verification.requirements import Method, Requirements

    values = {
        "factors": 1,
        "methods": SUBJECT_METHODS,
        "require_distinct_channel": True,
        "manager_attestation": False,
        "id_proofing": False,
        "min_factor_age_days": 1,
        "challenge_ttl_seconds": 300,
        "max_attempts": 3,
        "verification_window_minutes": 10,
        **overrides,
    }
    values["methods"] = frozenset(Method(m) for m in values["methods"])
    return Requirements(**values)


@pytest.fixture
def make_case(agent, subject):
    """Open a case through `case_open` with requirements built from keyword overrides."""
    from verification.cases import case_open
    from verification.models import Purpose

    def make(
        *,
        by=None,
        about=None,
        action="password_reset",
        channel="walk_in",
        ticket="INC-1",
        purpose=Purpose.SERVICE_DESK,
        decision=None,
        lost_factors=False,
        **requirements,
    ):
        return case_open(
            subject=about or subject,
            agent=by or agent,
            action=action,
            channel=channel,
            ticket=ticket,
            purpose=purpose,
            requirements=make_requirements(**requirements),
            decision=decision or DECISION,
            lost_factors=lost_factors,
        )

    return make


@pytest.fixture
def sms_outbox(settings, tmp_path):
    """The file SMS backend in tmp_path; returns a reader of the messages sent so far."""
    import json

    path = tmp_path / "sms.jsonl"
    settings.SMS_BACKEND, settings.SMS_FILE_PATH = "file", str(path)

    def read():
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run what a block enqueues after commit, the way a worker would right after it."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def hook_server():
    """A local HTTP endpoint standing in for an SMS gateway or an IdP: it records each
    POST (JSON body, headers) and answers with the statuses queued on it, then 200."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from types import SimpleNamespace

    hook = SimpleNamespace(received=[], statuses=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append({"raw": raw, "json": json.loads(raw), "headers": dict(self.headers)})
            self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield hook
    server.shutdown()
    server.server_close()


def signed_by(secret: str, received: dict) -> bool:
    import hashlib
    import hmac

    expected = "sha256=" + hmac.new(secret.encode(), received["raw"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received["headers"].get("X-Vigil-Signature", ""))


@pytest.fixture
def eager_retries():
    """Let eagerly run tasks go through their retries instead of raising the first Retry."""
    from celery import current_app

    current_app.conf.task_eager_propagates = False
    yield
    current_app.conf.task_eager_propagates = True
