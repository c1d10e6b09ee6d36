"""An agent verifies a caller by push while the caller approves on their own page,
then resets their password — two browsers, one flow, no secret seen by the agent."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from policies.demo import seed_policy
from policies.snapshot import snapshot_invalidate
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token
from verification.factors import factor_enroll
from verification.models import VerificationCase

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def weekday_noon():
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=True):
        yield


def test_agent_verifies_by_push_and_resets_a_password(
    weekday_noon, browser, live_server, page, login_as, agent, subject, screenshot
):
    seed_policy()
    snapshot_invalidate()
    with time_machine.travel(datetime(2026, 10, 1, 12, 0, tzinfo=UTC)):
        factor_enroll(user=subject, method="push")
        subject_device = authenticator(subject)

    login_as(page, agent)
    page.wait_for_url("**/admin/")
    page.click("text=Verify a caller")
    page.click(".select2-selection")
    page.fill(".select2-search__field", subject.username)
    page.click(f".select2-results__option:has-text('{subject.username}')")
    page.select_option("#id_action", value="password_reset")
    page.select_option("#id_channel", value="phone")
    page.fill("#id_ticket", "INC-4242")
    page.click("input[value='Open case']")
    page.wait_for_url("**/admin/console/case/*/")
    assert "Tier 2 (Elevated)" in page.inner_text("#content")
    page.click("#challenge-push")
    number = page.inner_text(".match-number").strip()
    assert len(number) >= 3

    caller = browser.new_context(base_url=live_server.url).new_page()
    caller.goto("/me/")
    caller.fill("#id_username", subject.username)
    caller.fill("#id_password", PASSWORD)
    caller.fill("#id_otp_token", current_token(subject_device))
    caller.click("#sign-in")
    caller.wait_for_url("**/me/")
    card = caller.locator("[id^=challenge-]")
    assert "agent" in card.inner_text() and "INC-4242" in card.inner_text()
    assert number not in card.inner_text()
    screenshot(caller, "me-push-pending")
    caller.fill("input[name=number]", number)
    caller.click("button[value=approve]")
    assert "passed" in caller.inner_text("body").lower()

    page.wait_for_selector("#execute", timeout=15_000)  # the console refreshes itself
    page.click("#execute")
    result = page.inner_text("#execution-result")
    assert result == f"Result: Link sent to {subject.email[0]}***@example.test"
    screenshot(page, "console-executed")
    case = VerificationCase.objects.get()
    assert case.state == "executed" and case.agent == agent
    assert any("Reset your password" in message.subject for message in mail.outbox)
    page_text = page.content()
    assert subject_device.key not in page_text
    assert timedelta(0) <= case.consumed_at - case.verified_at < timedelta(minutes=5)
