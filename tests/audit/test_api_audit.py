from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import record
from tests.audit.trail import november_trail

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit-events/"
METRICS = "/api/v1/metrics/"


@pytest.fixture
def client_as():
    def make(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def auditor_api(client_as, auditor):
    november_trail()
    return client_as(auditor)


def seqs(response):
    assert response.status_code == 200, response.json()
    return [row["seq"] for row in response.json()["results"]]


def expected(**lookups):
    return list(AuditEvent.objects.filter(**lookups).order_by("-at", "-seq").values_list("seq", flat=True))


def test_lists_newest_first_in_the_contract_shape(auditor_api):
    body = auditor_api.get(EVENTS).json()
    first = body["results"][0]
    newest = AuditEvent.objects.order_by("-at", "-seq").first()
    assert first["seq"] == newest.seq
    assert {"id", "at", "actor", "subject", "verb", "outcome", "tier", "channel", "data", "hash"} <= set(
        first
    )
    assert first["hash"] == newest.hash
    assert seqs(auditor_api.get(EVENTS)) == sorted(seqs(auditor_api.get(EVENTS)), reverse=True)


@pytest.mark.parametrize(
    ("query", "lookups"),
    [
        ({"verb": "case_verified"}, {"verb": "case_verified"}),
        ({"outcome": "blocked"}, {"outcome": "blocked"}),
        ({"subject": "bob"}, {"subject": "bob"}),
        ({"actor": "agent.b"}, {"actor": "agent.b"}),
        ({"tier": "3"}, {"tier": 3}),
        ({"channel": "walk_in"}, {"channel": "walk_in"}),
        ({"action": "mfa_reset"}, {"action": "mfa_reset"}),
        ({"since": "2026-11-05"}, {"at__gte": "2026-11-05T00:00:00+00:00"}),
        # A bare `until` date includes that whole day.
        ({"until": "2026-11-04"}, {"at__lt": "2026-11-05T00:00:00+00:00"}),
        (
            {"since": "2026-11-03T09:01:00Z", "until": "2026-11-04T12:00:00+00:00", "subject": "bob"},
            {"at__gte": "2026-11-03T09:01:00+00:00", "at__lt": "2026-11-04T12:00:00+00:00", "subject": "bob"},
        ),
    ],
)
def test_each_contract_filter(auditor_api, query, lookups):
    wanted = expected(**lookups)
    assert wanted, "the filter must select something for the test to mean anything"
    assert seqs(auditor_api.get(EVENTS, query)) == wanted


def test_cursor_pages_survive_events_recorded_in_the_same_instant(client_as, auditor, time_machine):
    time_machine.move_to(datetime(2026, 11, 2, 10, tzinfo=UTC), tick=False)
    same_instant = [record("case_opened", subject=f"user{i}").seq for i in range(7)]
    api = client_as(auditor)
    seen, url = [], f"{EVENTS}?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [row["seq"] for row in body["results"]]
        url = body["next"]
    assert seen == sorted(same_instant, reverse=True)


def test_cursor_pages_walk_every_row_once(auditor_api):
    seen, url = [], f"{EVENTS}?page_size=4"
    while url:
        body = auditor_api.get(url).json()
        seen += [row["seq"] for row in body["results"]]
        url = body["next"]
    assert seen == expected()
    assert len(seen) > 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"tier": "high"}, "tier"),
        ({"tier": "-1"}, "tier"),
        ({"tier": "99999999999999999999"}, "tier"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"verb": "x\x00y"}, "verb"),
        ({"subject": "s" * 151}, "subject"),
        ({"since": "2026-11-10", "until": "2026-11-01"}, "__all__"),
    ],
)
def test_bad_filter_values_are_400_naming_the_field(auditor_api, query, field):
    response = auditor_api.get(EVENTS, query)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] and body["code"]
    assert field in body["errors"]


def test_a_forged_cursor_is_400(auditor_api):
    response = auditor_api.get(EVENTS, {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor.", "code": "invalid_cursor"}


def test_security_admins_may_read_the_trail(client_as, security_admin):
    november_trail()
    assert client_as(security_admin).get(EVENTS).status_code == 200


@pytest.mark.parametrize("who", ["agent", "manager", "subject", "approver", "outsider"])
def test_everyone_else_is_refused(client_as, request, who):
    user = request.getfixturevalue(who)
    for url in (EVENTS, METRICS):
        response = client_as(user).get(url)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_anonymous_callers_are_401(client_as):
    assert client_as(None).get(EVENTS).status_code == 401
    assert client_as(None).get(METRICS).status_code == 401


def test_metrics_of_a_period(auditor_api):
    body = auditor_api.get(METRICS, {"since": "2026-11-01", "until": "2026-11-30"}).json()
    assert body["cases"]["opened"] == 7
    assert body["cases"]["verified"] == 3
    assert body["actions"] == {"executed": 1, "prevented": 4, "refused_at_execution": 1}
    assert body["trust_gap"]["share"] == 0.6
    assert body["since"].startswith("2026-11-01T00:00:00")
    assert body["until"].startswith("2026-12-01T00:00:00")
    assert {row["key"] for row in body["by_channel"]} == {"phone", "chat", "walk_in", "portal", "email"}
    assert len(body["per_day"]) == 30


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"since": "2026-11-10", "until": "2026-11-01"},
        {"since": "1900-01-01", "until": "2026-01-01"},
    ],
)
def test_metrics_refuse_a_bad_period_with_400(auditor_api, query):
    response = auditor_api.get(METRICS, query)
    assert response.status_code == 400
    assert "period" in response.json()["errors"]


def test_schema_documents_the_audit_endpoints(client_as, auditor):
    schema = client_as(auditor).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    events = schema["paths"]["/api/v1/audit-events/"]["get"]
    names = {p["name"] for p in events["parameters"]}
    assert {
        "verb",
        "outcome",
        "subject",
        "actor",
        "tier",
        "channel",
        "action",
        "since",
        "until",
        "cursor",
    } <= names
    metrics = schema["paths"]["/api/v1/metrics/"]["get"]
    assert {p["name"] for p in metrics["parameters"]} == {"since", "until"}
    assert "trust_gap" in schema["components"]["schemas"]["Metrics"]["properties"]
