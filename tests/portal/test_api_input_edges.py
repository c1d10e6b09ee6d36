"""Inputs the API fuzzer (tests/services/test_fuzz_api.py) found mishandled, kept here
in the fast suite: each is a 4xx in the error shape, and the schema says so."""

import pytest
from rest_framework.test import APIClient

from portal.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/verifications/abc/",
        "/api/v1/verifications/-1/",
        "/api/v1/verifications/1234567890123456789/",  # past a bigint: never reaches the database
        "/api/v1/challenges/%0A/answer/",
        "/api/v1/no-such-thing/",
    ],
)
def test_a_path_matching_no_operation_is_a_json_404(api, path):
    assert_error(api.post(path, {}, format="json"), 404, "not_found")


def test_a_path_without_its_slash_still_redirects_to_it(api):
    assert api.get("/api/v1/me").status_code == 301


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"subject": "subject\\u0000", "action": "password_reset", "channel": "phone"}', "application/json"),
        ("subject=subject%00&action=password_reset&channel=phone", "application/x-www-form-urlencoded"),
        (
            '{"subject": "subject", "action": "password_reset", "channel": "phone", "x\\u0000": 1}',
            "application/json",
        ),
    ],
)
def test_nul_characters_in_a_body_are_bad_input(api, body, content_type):
    response = api.post("/api/v1/verifications/", body, content_type=content_type)
    assert_error(response, 400, "nul_character")


def test_nul_in_a_nested_execute_parameter_is_bad_input(api):
    response = api.post("/api/v1/verifications/1/execute/", {"params": {"email": ["a\x00"]}}, format="json")
    assert_error(response, 400, "nul_character")


@pytest.mark.parametrize("page_size", ["", "0", "501", "abc", "²", "null"])
def test_audit_page_size_outside_the_schema_is_bad_input(page_size):
    client = APIClient()
    client.force_authenticate(UserFactory(username="auditor", roles=[Role.AUDITOR]))
    response = client.get("/api/v1/audit-events/", {"page_size": page_size})
    assert assert_error(response, 400, "invalid")["errors"] == {"page_size": ["a whole number from 1 to 500"]}


def test_grants_active_filter_is_a_boolean_and_empty_means_not_given(api):
    assert_error(api.get("/api/v1/grants/", {"active": "maybe"}), 400, "invalid")
    # CONTRACT's own example, GET /api/v1/grants/?user=&active=, lists everything visible.
    assert api.get("/api/v1/grants/?user=&active=").status_code == 200
    assert api.get("/api/v1/grants/?active=TRUE").status_code == 200


def test_grants_user_filter_refuses_nul(api):
    assert_error(api.get("/api/v1/grants/", {"user": "a\x00"}), 400, "null_characters_not_allowed")


def test_schema_declares_error_responses_in_one_error_component(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    create_challenge = schema["paths"]["/api/v1/verifications/{case_id}/challenges/"]["post"]
    assert set(create_challenge["responses"]) == {"201", "400", "401", "403", "404", "409", "415", "429"}
    assert create_challenge["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert set(schema["paths"]["/api/v1/me/"]["get"]["responses"]) == {"200", "401", "403"}
    case_id = create_challenge["parameters"][0]
    assert case_id["schema"] == {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}


def test_schema_says_which_case_times_may_be_null(client):
    case = client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]["CaseOut"]
    assert case["properties"]["verified_until"]["nullable"] is True
    assert case["properties"]["usable_from"]["nullable"] is True
    assert "nullable" not in case["properties"]["expires_at"]
