import csv
import io
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.tasks import audit_chain_verify
from tests.audit.trail import november_trail

pytestmark = pytest.mark.django_db(transaction=True)


def test_auditor_sees_the_dashboard_filters_what_was_blocked_and_exports_it(
    page, login_as, auditor, screenshot
):
    # The known November story (and its October case), moved so that its last
    # case was opened a day ago: all eight cases fall in the last 30 days.
    november_trail(shift=timezone.now() - datetime(2026, 11, 9, 16, tzinfo=UTC))
    audit_chain_verify()

    login_as(page, auditor)
    page.wait_for_url("**/admin/")
    dashboard = page.locator("#audit-dashboard")
    assert dashboard.is_visible()
    assert "8 Cases opened" in " ".join(dashboard.locator(".vigil-tiles li").all_inner_texts()).replace(
        "\n", " "
    )
    assert dashboard.locator("svg[role=img]").count() == 4
    assert "intact" in page.locator("#chain-status").inner_text()
    screenshot(page, "auditor-dashboard")

    page.goto("/admin/audit/auditevent/")
    page.locator("#changelist-filter details[data-filter-title=outcome] a", has_text="Blocked").click()
    page.wait_for_url("**outcome__exact=blocked**")
    subject_box = page.locator("#changelist-filter input[name=subject]")
    subject_box.fill("bob")
    subject_box.press("Enter")
    page.wait_for_url("**subject=bob**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "case_blocked" in rows.first.inner_text()
    screenshot(page, "auditor-filtered-trail")

    with page.expect_download() as download_info:
        page.click("#export-csv")
    content = download_info.value.path().read_text()
    lines = list(csv.DictReader(io.StringIO(content)))
    blocked = AuditEvent.objects.get(outcome="blocked", subject="bob")
    assert [(row["seq"], row["verb"], row["hash"]) for row in lines] == [
        (str(blocked.seq), "case_blocked", blocked.hash)
    ]
    assert AuditEvent.objects.filter(verb="admin_export", actor=auditor.username).exists()
