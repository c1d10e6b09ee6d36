import re
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from audit.tasks import audit_chain_verify
from portal.dashboard import columns_chart, dashboard_days, rows_chart
from tests.audit.trail import november_trail
from tests.otp import otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_figures():
    """The dashboard keeps its figures for a minute; each test brings its own events."""
    cache.clear()


@pytest.fixture
def mid_november(time_machine):
    november_trail()
    time_machine.move_to(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False)


def dashboard(html: str) -> str:
    match = re.search(r'<div class="module" id="audit-dashboard">.*?</style>', html, re.S)
    assert match, "no dashboard on the page"
    return match.group(0)


def test_auditor_sees_figures_and_charts_on_the_admin_index(client, auditor, mid_november):
    otp_login(client, auditor)
    audit_chain_verify()
    page = dashboard(client.get("/admin/").content.decode())
    tiles = dict(
        (label.strip(), int(value))
        for value, label in re.findall(r'<span class="vigil-figure">(\d+)</span>([^<]+)</a>', page)
    )
    assert tiles == {
        "Cases opened": 7,
        "Verified": 3,
        "Actions executed": 1,
        "Prevented": 4,
        "Impersonation reports": 1,
    }
    assert "60.0%" in page and "3 of 5 settled service-desk cases never verified" in page
    assert "3.0 min" in page
    assert page.count('<svg role="img"') == 4
    assert "<title>2026-11-06: 1 prevented</title>" in page
    assert "<title>walk_in: 1 verified</title>" in page
    assert "<title>bob: 4 failures</title>" in page
    assert re.search(r"Audit chain last checked .*<strong>intact</strong>, \d+ events", page, re.S)


def test_the_dashboard_needs_no_network(client, auditor, mid_november):
    otp_login(client, auditor)
    page = dashboard(client.get("/admin/").content.decode())
    assert "<script" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * 4


def test_tiles_link_to_the_filtered_trail(client, auditor, mid_november):
    otp_login(client, auditor)
    page = dashboard(client.get("/admin/").content.decode())
    link = re.search(r'href="([^"]+)"><span class="vigil-figure">4</span> Prevented', page).group(1)
    listed = client.get(link.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert {row.verb for row in listed.context["cl"].result_list} == {
        "case_blocked",
        "case_failed",
        "push_reported",
        "action_blocked",
    }


def test_security_admins_see_it_agents_do_not(client, security_admin, agent, mid_november):
    otp_login(client, security_admin)
    assert 'id="audit-dashboard"' in client.get("/admin/").content.decode()
    client.logout()
    otp_login(client, agent)
    assert 'id="audit-dashboard"' not in client.get("/admin/").content.decode()


def test_period_choice(client, auditor, mid_november):
    otp_login(client, auditor)
    assert "last 7 days" in client.get("/admin/", {"days": "7"}).content.decode()
    assert "last 30 days" in client.get("/admin/", {"days": "1000"}).content.decode()
    assert dashboard_days("abc") == dashboard_days(None) == 30
    assert dashboard_days("90") == 90


def test_an_empty_period_says_so_instead_of_drawing(client, auditor):
    otp_login(client, auditor)
    page = dashboard(client.get("/admin/").content.decode())
    assert page.count("Nothing recorded in this period.") == 4
    assert "has not been checked yet" in page


def test_column_heights_are_proportional():
    chart = columns_chart(
        "t",
        [
            {"day": "2026-11-01", "verified": 4, "prevented": 2},
            {"day": "2026-11-02", "verified": 0, "prevented": 1},
        ],
    )
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == pytest.approx(2 * heights[1])
    assert heights[0] == pytest.approx(4 * heights[3])
    assert heights[2] == 0
    assert not chart.empty


def test_rows_chart_with_nothing_is_empty():
    assert rows_chart("t", []).empty
    assert rows_chart("t", [("a", [("x", "#000", 0)], "")]).empty


def test_chart_labels_link_to_the_matching_events(client, auditor, mid_november):
    otp_login(client, auditor)
    page = dashboard(client.get("/admin/").content.decode())
    link = re.search(r'<a href="([^"]+)"><text[^>]*>bob</text></a>', page).group(1)
    listed = client.get(link.replace("&amp;", "&")).context["cl"].result_list
    assert {row.subject for row in listed} == {"bob"}
    assert {row.verb for row in listed} == {"challenge_failed", "case_failed", "case_blocked"}


def test_figures_are_kept_for_a_minute(client, auditor, mid_november, time_machine):
    from audit.services import record

    otp_login(client, auditor)
    tile = r'<span class="vigil-figure">(\d+)</span> Cases opened'
    assert re.search(tile, client.get("/admin/").content.decode()).group(1) == "7"
    record("case_opened", subject="late", data={"purpose": "service_desk"})
    assert re.search(tile, client.get("/admin/").content.decode()).group(1) == "7"
    time_machine.shift(60)
    assert re.search(tile, client.get("/admin/").content.decode()).group(1) == "8"
