"""The API fuzzed from its own OpenAPI schema (schemathesis, as /api/schema/ serves it)
on the real stack: a live server on PostgreSQL, tasks published on Redis, a token per role.

Every operation gets the schema's coverage cases (boundaries, wrong types, wrong content
types, other methods) and MAX_EXAMPLES random ones, valid and invalid; valid ones go as
every role, aimed at rows that exist. Nothing may answer 5xx, break its declared schema
or accept what the schema rejects, and every error has the CONTRACT shape
{"detail": ..., "code": ...}. Derandomized: a run is the same run until the code changes.
"""

import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
import time_machine
from django.test import Client
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from policies.access import access_request_decide, access_request_submit
from policies.models import AccessRequest, Grant, SensitiveAction
from policies.services import verification_open
from portal.celery import app
from portal.models import ApiToken
from tests.factories import prod_db_entitlement
from tests.otp import current_token
from verification.challenges import challenge_answer, challenge_create
from verification.factors import factor_enroll

# Business hours on a weekday, so the default policy's off-hours rule stays quiet.
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# Random examples per operation, on top of the coverage cases: keeps the run to minutes.
MAX_EXAMPLES = 10
ROLES = ("agent", "manager", "approver", "auditor", "employee")


@schemathesis.check
def error_has_contract_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """CONTRACT: every error is JSON {"detail": str, "code": str}."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"{response.status_code} error body is not JSON: {response.text[:300]!r}"
        ) from None
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert isinstance(body.get("detail"), str), f"error body has no string detail: {body!r}"
    assert isinstance(body.get("code"), str), f"error body has no string code: {body!r}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    error_has_contract_shape,
]
# Ids and names that exist in the current test's database, for the fuzzer to aim at.
TARGETS: dict[str, list[Any]] = {}
# The whole run's figures, reported at the end of the module.
TALLY: Counter[str] = Counter()
OPERATIONS: set[str] = set()
BY_OPERATION: defaultdict[str, Counter[str]] = defaultdict(Counter)


def _with_step_up_passed(request: AccessRequest, device: Any) -> AccessRequest:
    assert request.verification is not None
    challenge = challenge_create(case=request.verification, method="totp", actor=request.requester)
    challenge_answer(challenge=challenge, code=current_token(device), actor=request.requester)
    return AccessRequest.objects.get(pk=request.pk)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(TUESDAY_NOON, tick=True)


@pytest.fixture
def tokens(
    transactional_db, clock, default_policy, agent, manager, subject, approver, auditor
) -> dict[str, str]:
    """A token per role, and one of everything in a state the API acts on: an open case
    with a pending push to the subject, an access request waiting for approval, and an
    active grant (their ids become TARGETS)."""
    with time_machine.travel(TUESDAY_NOON - timedelta(days=30), tick=False):
        for method in ("totp", "email", "sms", "push", "backup_codes"):
            factor_enroll(user=subject, method=method)
        manager_totp = factor_enroll(user=manager, method="totp").device
        factor_enroll(user=manager, method="push")
        factor_enroll(user=approver, method="totp")
    entitlement = prod_db_entitlement()
    case = verification_open(
        subject=subject, agent=agent, action_code="password_reset", channel="walk_in", ticket="INC-1"
    )
    push = challenge_create(case=case, method="push", actor=agent)
    requested = [
        _with_step_up_passed(
            access_request_submit(
                requester=manager,
                beneficiary=manager,
                entitlement=entitlement,
                justification="incident INC-2",
                duration_minutes=30,
                ticket="INC-2",
            ),
            manager_totp,
        )
        for _ in range(2)
    ]
    access_request_decide(request=requested[1], approver=approver, approve=True, comment="INC-2 is real")
    TARGETS.clear()
    TARGETS.update(
        case_id=[case.pk, *(r.verification_id for r in requested)],
        challenge_id=[push.pk],
        request_id=[r.pk for r in requested],
        grant_id=list(Grant.objects.values_list("pk", flat=True)),
        subject=[subject.username, manager.username],
        beneficiary=[subject.username, manager.username],
        action=list(SensitiveAction.objects.values_list("code", flat=True)),
        entitlement=[entitlement.pk],
    )
    people = {
        "agent": agent,
        "manager": manager,
        "approver": approver,
        "auditor": auditor,
        "employee": subject,
    }
    return {role: ApiToken.issue(user)[1] for role, user in people.items()}


def _aim(context: Any, case: Any) -> st.SearchStrategy:
    """A valid case sometimes names what exists, so authorized paths run past the 404."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return st.just(case)
    picks: dict[str, st.SearchStrategy] = {}
    for name in case.path_parameters or {}:
        if TARGETS.get(name):
            picks[f"path:{name}"] = st.sampled_from([case.path_parameters[name], *TARGETS[name]])
    if isinstance(case.body, dict):
        for name in case.body:
            if TARGETS.get(name):
                picks[f"body:{name}"] = st.sampled_from([case.body[name], *TARGETS[name]])

    def aimed(chosen: dict[str, Any]) -> Any:
        for key, value in chosen.items():
            location, name = key.split(":")
            (case.path_parameters if location == "path" else case.body)[name] = value
        return case

    return st.fixed_dictionaries(picks).map(aimed)


def _published_schema() -> schemathesis.BaseSchema:
    """The schema as /api/schema/ serves it (no database needed to render it)."""
    raw = Client(HTTP_HOST="localhost").get("/api/schema/", {"format": "json"}).json()
    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "with-security-parameters": False},
            "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_dict(raw, config=config)
    schema.hook("flatmap_case")(_aim)
    return schema


@pytest.fixture
def broker():
    """The fuzzed requests enqueue on the real Redis (deliveries, grant deadlines); the API
    never waits for a task, so no worker runs them, and none outlives the test's rows."""
    app.control.purge()
    yield
    app.control.purge()


@pytest.fixture
def roomy_throttles(settings):
    """Throttles stay on, with room enough for the fuzzer to reach what lies behind them."""
    rates = {scope: "100000/hour" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def _roles_for(case: Any) -> tuple[str, ...]:
    """Valid input goes as every role, so each role's authorized path runs; invalid input
    as one role, picked from its content (spread over all, and the same on a replay)."""
    if case.meta is not None and case.meta.generation.mode.is_positive:
        return ROLES
    content = ascii((case.method, case.formatted_path, case.query, case.body))
    return (ROLES[zlib.crc32(content.encode()) % len(ROLES)],)


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """The run's figures, printed past the output capture."""
    yield
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(TALLY.items()))
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nfuzz: {len(OPERATIONS)} operations, {TALLY.total()} requests ({statuses})")
        for label, counts in sorted(BY_OPERATION.items()):
            print(f"  {label}: {dict(sorted(counts.items()))}")


schema = _published_schema()


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_keeps_its_contract_on_any_input(case, live_server, broker, roomy_throttles, tokens):
    OPERATIONS.add(case.operation.label)
    for role in _roles_for(case):
        response = case.call(base_url=live_server.url, headers={"Authorization": f"Token {tokens[role]}"})
        TALLY[str(response.status_code)] += 1
        BY_OPERATION[case.operation.label][str(response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)
