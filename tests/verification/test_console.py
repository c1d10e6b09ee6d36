"""The agent console in the admin, driven through its real pages."""

import re

import pytest
from django_otp.oath import totp

from tests.otp import otp_login
from verification.models import VerificationCase

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, agent, enrolled, default_policy):
    otp_login(client, agent)
    return client


def open_via_console(console, subject, **extra):
    response = console.post(
        "/admin/console/",
        {"subject": subject.pk, "action": "password_reset", "channel": "walk_in", "ticket": "INC-9", **extra},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return VerificationCase.objects.latest("id")


def test_agent_verifies_by_totp_and_executes(console, subject, enrolled):
    case = open_via_console(console, subject)
    page = console.get(f"/admin/console/case/{case.pk}/").content.decode()
    assert "Tier 2 (Elevated)" in page and "Challenge totp" in page
    assert enrolled["totp"].device.key not in page
    console.post(
        f"/admin/console/case/{case.pk}/",
        {"op": "challenge", "method": "totp", "device": enrolled["totp"].device.persistent_id},
    )
    challenge = case.challenges.get()
    device = enrolled["totp"].device
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    console.post(f"/admin/console/case/{case.pk}/", {"op": "answer", "challenge": challenge.pk, "code": code})
    case.refresh_from_db()
    assert case.state == "verified"
    response = console.post(f"/admin/console/case/{case.pk}/", {"op": "execute"}, follow=True)
    page = response.content.decode()
    assert re.search(r"Link sent to s\*\*\*@example\.test", page)
    case.refresh_from_db()
    assert case.state == "executed"


def test_errors_become_messages_not_500s(console, subject):
    case = open_via_console(console, subject)
    response = console.post(
        f"/admin/console/case/{case.pk}/", {"op": "challenge", "method": "email_otp"}, follow=True
    )
    assert response.status_code == 200
    assert "mail_otp is not allowed at this tier" in response.content.decode()
    response = console.post(f"/admin/console/case/{case.pk}/", {"op": "execute"}, follow=True)
    assert "not verified" in response.content.decode()


def test_blocked_case_shows_why_and_offers_escalation(console, subject, agent):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(6):
        VerificationCase.objects.create(
            subject=subject,
            agent=agent,
            action="password_reset",
            channel="phone",
            expires_at=timezone.now() + timedelta(minutes=5),
        )
    case = open_via_console(console, subject)
    assert case.state == "blocked"
    page = console.get(f"/admin/console/case/{case.pk}/").content.decode()
    assert "blocked by rule" in page and "Escalate to security" in page
    console.post(f"/admin/console/case/{case.pk}/", {"op": "escalate", "note": "caller insisted"})
    case.refresh_from_db()
    assert case.state == "escalated"


def test_console_is_for_agents_only(client, auditor, default_policy):
    otp_login(client, auditor)
    assert client.get("/admin/console/").status_code == 403


def test_bad_console_input_is_a_form_error(console):
    response = console.post("/admin/console/", {"subject": "999999", "action": "make_coffee", "channel": "x"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) >= {"subject", "action", "channel"}
