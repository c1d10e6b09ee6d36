"""A manager asks for temporary access for a report, passes the step-up, an
approver approves, and the grant shows with its time left."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from policies.access import access_request_decide
from policies.demo import seed_policy
from policies.models import AccessRequest
from policies.snapshot import snapshot_invalidate
from tests.factories import prod_db_entitlement
from tests.otp import authenticator, current_token
from verification.factors import factor_enroll

pytestmark = pytest.mark.django_db(transaction=True)


def test_manager_requests_steps_up_and_an_approver_grants(
    browser, live_server, page, login_as, manager, subject, approver, screenshot
):
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=True):
        seed_policy()
        snapshot_invalidate()
        owner = prod_db_entitlement().owner
        manager.is_staff = approver.is_staff = True
        manager.save()
        approver.save()
        with time_machine.travel(datetime(2026, 10, 1, tzinfo=UTC)):
            backup = factor_enroll(user=manager, method="backup_codes")
            for person in (manager, approver, owner):
                authenticator(person)

        login_as(page, manager)
        page.goto("/admin/policies/accessrequest/add/")
        page.select_option("#id_beneficiary", label=subject.username)
        page.select_option("#id_entitlement", index=1)
        page.fill("#id_duration_minutes", "45")
        page.fill("#id_justification", "Fix the stuck migration, INC-77")
        page.fill("#id_ticket", "INC-77")
        page.click("input[value='Request access']")
        page.wait_for_url("**/admin/console/case/*/")
        page.click("#challenge-totp")
        page.fill(".code-input", current_token(authenticator(manager)))
        page.click("input[value='Check code']")
        page.click("#challenge-backup_code")
        page.fill(".code-input", backup.secrets_to_show[0])
        page.click("input[value='Check code']")
        page.locator("#step-up-passed").wait_for()
        request = AccessRequest.objects.get()
        assert request.state == "pending_approval" and request.approvals_required == 2

        access_request_decide(
            request=request,
            approver=owner,
            approve=True,
            comment="owner ok",
            step_up_code=current_token(authenticator(owner)),
        )
        reviewer = browser.new_context(base_url=live_server.url).new_page()
        login_as(reviewer, approver)
        reviewer.goto("/admin/policies/accessrequest/waiting/")
        card = reviewer.locator(f"#request-{request.pk}")
        assert "Fix the stuck migration" in card.inner_text()
        card.locator("input[name=comment]").fill("approved for the incident")
        card.locator("input[name=step_up_code]").fill(current_token(authenticator(approver)))
        card.locator("button[value=approve]").click()
        reviewer.goto("/admin/policies/grant/")
        row = reviewer.locator("#result_list tbody tr").first
        assert "Prod DB admin" in row.inner_text() and "active" in row.inner_text()
        screenshot(reviewer, "grant-active")
        request.refresh_from_db()
        grant = request.grant
        assert request.state == "active" and grant.expires_at - grant.starts_at == timedelta(minutes=45)
