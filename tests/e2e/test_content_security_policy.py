"""The pages that run the most third-party script work under our Content-Security-Policy.

The `page` fixture fails any test during which the browser refused something.
"""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_the_api(page):
    page.goto("/api/docs/")
    assert "Vigil API" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock-summary-path", has_text="/api/v1/verifications/").first.wait_for()


def test_admin_pages_run_their_scripts(page, login_as, security_admin):
    login_as(page, security_admin)
    page.wait_for_url("**/admin/")
    page.goto("/admin/audit/auditevent/")
    page.locator("#changelist-filter").wait_for()
    page.goto("/admin/policies/riskrule/add/")
    # SelectFilter2.js builds the two-list picker of filter_horizontal.
    page.locator("#id_actions_from").wait_for()
    page.goto(f"/admin/portal/user/{security_admin.pk}/change/")
    page.locator(".select2-selection").first.wait_for()


def test_subject_page_and_agent_console_load_cleanly(page, login_as, agent):
    login_as(page, agent)
    page.wait_for_url("**/admin/")
    page.goto("/admin/console/")
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").wait_for()
    page.goto("/me/")
    assert "/me/" in page.url
