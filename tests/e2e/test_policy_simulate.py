import pytest

from policies.demo import seed_policy
from policies.models import RiskTier
from policies.snapshot import snapshot_invalidate

pytestmark = pytest.mark.django_db(transaction=True)


def test_security_admin_edits_a_tier_then_simulates_a_decision(
    page, login_as, security_admin, subject, screenshot
):
    seed_policy()
    snapshot_invalidate()
    login_as(page, security_admin)
    page.wait_for_url("**/admin/")

    elevated = RiskTier.objects.get(level=2)
    page.goto(f"/admin/policies/risktier/{elevated.pk}/change/")
    page.fill("#id_name", "Elevated — phone verified")
    page.fill("#id_challenge_ttl_seconds", "240")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/policies/risktier/")
    assert page.locator("td.field-name", has_text="Elevated — phone verified").is_visible()

    page.goto("/admin/policies/sensitiveaction/")
    page.click("text=Simulate a decision")
    page.select_option("#id_subject", label=subject.username)
    page.select_option("#id_action", value="password_reset")
    page.select_option("#id_channel", value="walk_in")
    page.fill("#id_at", "2026-11-24T12:00")
    page.click("input[value=Simulate]")

    outcome = page.locator("#decision-outcome").inner_text()
    assert "tier 2 (Elevated — phone verified)" in outcome
    assert "Codes live 240 s" in page.locator("#decision-requirements").inner_text()
    screenshot(page, "policy-simulate")
