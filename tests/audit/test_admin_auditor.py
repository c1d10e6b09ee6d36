from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import admin as audit_admin
from audit.admin import AuditEventAdmin, AuditTimelineMixin, period_bounds
from audit.models import AuditEvent
from audit.services import record
from tests.audit.trail import CaseRef, event, november_trail
from tests.otp import otp_login
from verification.models import Challenge, VerificationCase

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def auditor_client(client, auditor):
    otp_login(client, auditor)
    return client


def listed_seqs(response) -> list[int]:
    assert response.status_code == 200
    return [row.seq for row in response.context["cl"].result_list]


def expected(**lookups) -> list[int]:
    return list(AuditEvent.objects.filter(**lookups).order_by("-at", "-seq").values_list("seq", flat=True))


def test_auditor_sees_the_trail_newest_first_with_links_to_targets(auditor_client):
    november_trail()
    response = auditor_client.get(CHANGELIST)
    assert listed_seqs(response) == expected()[:100]
    assert "verification.verificationcase 7" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "lookups"),
    [
        ({"verb": "case_blocked"}, {"verb": "case_blocked"}),
        ({"outcome": "failure"}, {"outcome": "failure"}),
        ({"tier": "4"}, {"tier": 4}),
        ({"channel": "chat"}, {"channel": "chat"}),
        ({"action": "mfa_reset"}, {"action": "mfa_reset"}),
        ({"actor": "agent.b"}, {"actor": "agent.b"}),
        ({"subject": "bob"}, {"subject": "bob"}),
        ({"q": "carol"}, {"subject": "carol"}),
        ({"verb__in": "case_failed,case_blocked"}, {"verb__in": ["case_failed", "case_blocked"]}),
        ({"at__year": "2026", "at__month": "11", "at__day": "3"}, {"at__date": "2026-11-03"}),
    ],
)
def test_filters_search_and_dates(auditor_client, query, lookups):
    november_trail()
    wanted = expected(**lookups)
    assert wanted
    assert listed_seqs(auditor_client.get(CHANGELIST, query)) == wanted


def test_filter_choices_come_from_the_recorded_values(auditor_client):
    november_trail()
    page = auditor_client.get(CHANGELIST).content.decode()
    for value in ("case_opened", "push_reported", "walk_in", "access_grant"):
        assert f"={value}" in page


def test_period_filter_last_month(client, auditor, time_machine):
    november_trail()
    time_machine.move_to(datetime(2026, 12, 10, 9, tzinfo=UTC), tick=False)
    otp_login(client, auditor)
    blocked = listed_seqs(client.get(CHANGELIST, {"period": "last_month", "outcome": "blocked"}))
    assert blocked == expected(outcome="blocked", at__month=11)
    assert len(blocked) == 3


def test_period_bounds():
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    assert period_bounds("last_month", now) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert period_bounds("this_month", now) == (datetime(2026, 3, 1, tzinfo=UTC), now)
    assert period_bounds("7d", now) == (now - timedelta(days=7), now)
    assert period_bounds("bogus", now) is None


def changelist_queries(client, query=None) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(CHANGELIST, query or {}).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def many_events(n: int) -> None:
    for i in range(n):
        record("case_opened", actor=f"agent{i % 7}", subject=f"user{i}", channel="phone", tier=1 + i % 4)


@pytest.mark.parametrize(
    "query", [{}, {"verb": "case_opened", "tier": "2"}, {"q": "user3"}, {"period": "7d"}]
)
def test_a_page_costs_the_same_queries_for_ten_rows_or_three_hundred(auditor_client, query):
    many_events(10)
    few = changelist_queries(auditor_client, query)
    many_events(290)
    more = changelist_queries(auditor_client, query)
    assert len(few) == len(more)


def test_no_full_count_no_distinct_scan(auditor_client):
    many_events(30)
    for sql in changelist_queries(auditor_client):
        upper = sql.upper()
        assert "SELECT DISTINCT" not in upper
        if "COUNT(" in upper:
            assert "LIMIT" in upper, sql


def test_month_drilldown_reads_no_dates_from_the_table(auditor_client):
    november_trail()
    queries = changelist_queries(auditor_client, {"at__year": "2026", "at__month": "11"})
    assert not any('("audit_auditevent"."at")' in sql or "DISTINCT" in sql.upper() for sql in queries)
    page = auditor_client.get(CHANGELIST, {"at__year": "2026"}).content.decode()
    assert "at__month=11" in page


def test_the_count_stops_at_a_bound(auditor_client, monkeypatch):
    monkeypatch.setattr(audit_admin, "COUNT_PAGES", 2)
    monkeypatch.setattr(AuditEventAdmin, "list_per_page", 5)
    many_events(25)
    response = auditor_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 10
    assert "More than 10 audit events" in response.content.decode()
    assert auditor_client.get(CHANGELIST, {"subject": "user4"}).context["cl"].result_count == 1


def test_audit_rows_cannot_be_added_changed_or_deleted(auditor_client, client, security_admin):
    victim = record("case_opened", actor="agent", subject="subject")
    otp_login(client, security_admin)
    for who in (auditor_client, client):
        assert who.get(f"{CHANGELIST}add/").status_code == 403
        assert who.post(f"{CHANGELIST}{victim.pk}/change/", {"verb": "nothing"}).status_code == 403
        assert who.post(f"{CHANGELIST}{victim.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=victim.pk).verb == "case_opened"


def test_detail_page_shows_the_row_integrity(auditor_client):
    record("case_opened")
    second = record("case_verified")
    page = auditor_client.get(f"{CHANGELIST}{second.pk}/change/").content.decode()
    assert "content matches its hash · linked to the previous event" in page


def test_people_without_the_audit_permission_are_refused(client, agent):
    otp_login(client, agent)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}export/csv/").status_code == 403


def test_timeline_mixin_shows_the_events_of_an_object_in_order():
    case = CaseRef(41)
    event(datetime(2026, 11, 2, 10, tzinfo=UTC), "case_opened", case, actor="agent.a")
    event(datetime(2026, 11, 2, 10, 3, tzinfo=UTC), "case_verified", case)
    event(datetime(2026, 11, 2, 10, 4, tzinfo=UTC), "case_opened", CaseRef(42), actor="agent.z")
    html = AuditTimelineMixin().audit_timeline(case)  # type: ignore[arg-type]
    assert html.index("case_opened") < html.index("case_verified")
    assert "agent.a" in html and "agent.z" not in html
    assert "No audit events" in AuditTimelineMixin().audit_timeline(CaseRef(43))  # type: ignore[arg-type]


def make_cases(n: int, subject, agent) -> None:
    now = timezone.now()
    for i in range(n):
        case = VerificationCase.objects.create(
            subject=subject,
            agent=agent,
            action="password_reset",
            channel="phone",
            expires_at=now + timedelta(minutes=30),
            tier_level=2,
        )
        Challenge.objects.create(
            case=case,
            method="totp",
            recipient=subject,
            max_attempts=3,
            expires_at=now + timedelta(minutes=5),
            state="sent" if i % 2 else "failed",
        )


@pytest.mark.parametrize("url", ["/admin/verification/verificationcase/", "/admin/verification/challenge/"])
def test_case_and_challenge_changelists_cost_constant_queries(auditor_client, subject, agent, url):
    make_cases(3, subject, agent)
    with CaptureQueriesContext(connection) as few:
        assert auditor_client.get(url).status_code == 200
    make_cases(40, subject, agent)
    with CaptureQueriesContext(connection) as more:
        assert auditor_client.get(url).status_code == 200
    assert len(few) == len(more)


@pytest.mark.parametrize(
    "query", [{"q": "a\x00b"}, {"subject": "a\x00"}, {"verb": "\x00"}, {"at__year": "x"}, {"tier": "high"}]
)
def test_unfilterable_input_goes_back_to_the_list_instead_of_failing(auditor_client, query):
    for url in (CHANGELIST, f"{CHANGELIST}export/csv/"):
        response = auditor_client.get(url, query)
        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")
