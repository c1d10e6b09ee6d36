"""Delivery channels: the SMS backends of CONTRACT and email through Django's backend."""

import logging
import re
import socket

import pytest

from tests.verification.conftest import signed_by
from verification.challenges import challenge_answer, challenge_create
from verification.channels import DeliveryError, email_send, sms_send, webhook_post
from verification.models import Challenge, ChallengeState

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_file_backend_appends_json_lines(sms_outbox):
    sms_send(to="+15550100001", body="one")
    sms_send(to="+15550100002", body="two")
    assert sms_outbox() == [{"to": "+15550100001", "body": "one"}, {"to": "+15550100002", "body": "two"}]


def test_the_console_backend_logs_the_message(settings, caplog):
    settings.SMS_BACKEND = "console"
    with caplog.at_level(logging.INFO, logger="verification.channels"):
        sms_send(to="+15550100001", body="hello")
    assert "SMS to +15550100001: hello" in caplog.text


@pytest.fixture
def gateway(settings, hook_server):
    settings.SMS_BACKEND = "webhook"
    settings.SMS_WEBHOOK_URL, settings.SMS_WEBHOOK_SECRET = hook_server.url, "gateway-secret"
    return hook_server


def test_the_webhook_backend_posts_signed_json(gateway):
    sms_send(to="+15550100001", body="hello")
    [request] = gateway.received
    assert request["json"] == {"to": "+15550100001", "body": "hello"}
    assert request["headers"]["Content-Type"] == "application/json"
    assert signed_by("gateway-secret", request) and not signed_by("another-secret", request)


def test_a_webhook_error_or_an_unreachable_gateway_is_a_delivery_error(gateway, settings):
    gateway.statuses = [502]
    with pytest.raises(DeliveryError, match="answered 502"):
        sms_send(to="+15550100001", body="hello")
    settings.SMS_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/down"
    with pytest.raises(DeliveryError):
        sms_send(to="+15550100001", body="hello")
    with pytest.raises(DeliveryError):
        webhook_post(url=f"http://127.0.0.1:{free_port()}/down", payload={}, secret="s", timeout=0.5)


def test_an_sms_code_over_a_flaky_gateway_is_retried_until_it_arrives_and_then_verifies(
    make_case, agent, enrolled, gateway, run_on_commit, eager_retries
):
    gateway.statuses = [500, 503]
    with run_on_commit():
        challenge = challenge_create(case=make_case(), method="sms_otp", actor=agent)
    assert len(gateway.received) == 3
    stored = Challenge.objects.get(pk=challenge.pk)
    assert (
        stored.state == ChallengeState.SENT and stored.delivery_attempts == 3 and stored.delivery_error == ""
    )
    code = re.search(r"Vigil code (\d{6})", gateway.received[-1]["json"]["body"]).group(1)
    assert challenge_answer(challenge=stored, code=code, actor=agent).state == ChallengeState.PASSED


def test_an_smtp_failure_is_a_delivery_error(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 1
    context = {"name": "x", "headline": "h", "message": "m", "link": "", "link_label": "", "report_url": ""}
    with pytest.raises(DeliveryError, match=r"email to someone@example\.test"):
        email_send(to="someone@example.test", template="notice", context=context)
