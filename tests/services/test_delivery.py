"""A challenge dispatched by a real worker over Redis reaches a real SMTP server
and an HTTP SMS gateway, and the code read from there verifies."""

import hashlib
import hmac
import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.utils import timezone
from rest_framework.test import APIClient

from policies.demo import seed_policy
from policies.snapshot import snapshot_invalidate
from portal.roles import Role
from tests.factories import UserFactory
from verification.factors import factor_enroll


class Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf8", errors="replace"))
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd needs a concrete port to check it is up
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


@pytest.fixture
def sms_gateway(settings):
    received: list[tuple[dict, str, bool]] = []
    secret = "gateway-secret"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            received.append(
                (
                    json.loads(body),
                    self.headers["X-Vigil-Signature"],
                    hmac.compare_digest(expected, self.headers["X-Vigil-Signature"]),
                )
            )
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "webhook"
    settings.SMS_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/sms"
    settings.SMS_WEBHOOK_SECRET = secret
    yield received
    server.shutdown()


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def agent_api(celery_worker):
    # Business hours on a weekday, so the default policy's off-hours rule stays quiet.
    traveller = time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=True)
    traveller.start()
    seed_policy()
    snapshot_invalidate()
    agent = UserFactory(username="agent", is_staff=True, roles=[Role.AGENT])
    subject = UserFactory(username="subject", phone="+14155550123")
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        factor_enroll(user=subject, method="email")
        factor_enroll(user=subject, method="sms")
    client = APIClient()
    client.force_authenticate(agent)
    yield client, subject
    snapshot_invalidate()
    traveller.stop()


def open_unlock(client, subject, channel):
    response = client.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "account_unlock", "channel": channel, "ticket": "SVC-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_email_code_through_the_worker_and_smtp_verifies(agent_api, smtp_server):
    client, subject = agent_api
    case_id = open_unlock(client, subject, "chat")
    challenge = client.post(
        f"/api/v1/verifications/{case_id}/challenges/", {"method": "email_otp"}, format="json"
    ).json()
    assert challenge["state"] == "queued"
    message = wait_for(lambda: smtp_server.messages and smtp_server.messages[-1])
    assert f"To: {subject.email}" in message and "SVC-1" in message
    code = re.search(r"Your code is (\d{6})", message).group(1)
    answer = client.post(
        f"/api/v1/challenges/{challenge['id']}/answer/", {"code": code}, format="json"
    ).json()
    assert answer["state"] == "passed", answer
    assert client.get(f"/api/v1/verifications/{case_id}/").json()["state"] == "verified"


def test_sms_code_through_the_worker_and_a_signed_webhook_verifies(agent_api, sms_gateway):
    client, subject = agent_api
    case_id = open_unlock(client, subject, "chat")
    challenge = client.post(
        f"/api/v1/verifications/{case_id}/challenges/", {"method": "sms_otp"}, format="json"
    ).json()
    payload, signature, valid = wait_for(lambda: sms_gateway and sms_gateway[-1])
    assert valid and signature.startswith("sha256=")
    assert payload["to"] == "+14155550123"
    code = re.search(r"Vigil code (\d{6})", payload["body"]).group(1)
    answer = client.post(
        f"/api/v1/challenges/{challenge['id']}/answer/", {"code": code}, format="json"
    ).json()
    assert answer["state"] == "passed", answer
