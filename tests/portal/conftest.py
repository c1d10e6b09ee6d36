"""The standing world of the authorisation tests: the cast in every role, and one object
of each kind that belongs to someone (see tests/portal/authorization_table.py)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from policies.models import Entitlement, Grant
from portal.models import ApiToken, User
from tests.factories import UserFactory, prod_db_entitlement
from tests.otp import authenticator, current_token
from tests.policies.conftest import TUESDAY_NOON
from verification.factors import factor_enroll
from verification.models import SubjectHold


def api_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def api_post(user: User, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api_for(user).post(path, body or {}, format="json")
    assert response.status_code in (200, 201), (path, response.json())
    return response.json()


def step_up(requester: User, case_id: int, backup_code: str) -> None:
    """The requester passes their own two-factor step-up (tier 3: asking for a report)."""
    totp = api_post(requester, f"/api/v1/verifications/{case_id}/challenges/", {"method": "totp"})
    api_post(
        requester,
        f"/api/v1/challenges/{totp['id']}/answer/",
        {"code": current_token(authenticator(requester))},
    )
    backup = api_post(requester, f"/api/v1/verifications/{case_id}/challenges/", {"method": "backup_code"})
    assert (
        api_post(requester, f"/api/v1/challenges/{backup['id']}/answer/", {"code": backup_code})["state"]
        == "passed"
    )


def request_access(manager: User, report: User, entitlement: Entitlement, backup_code: str) -> int:
    created = api_post(
        manager,
        "/api/v1/access-requests/",
        {
            "beneficiary": report.username,
            "entitlement": entitlement.pk,
            "justification": "x",
            "duration_minutes": 30,
        },
    )
    step_up(manager, created["verification"], backup_code)
    return created["id"]


def approve(approver: User, request_id: int) -> None:
    code = current_token(authenticator(approver))
    api_post(approver, f"/api/v1/access-requests/{request_id}/approve/", {"step_up_code": code})


@dataclass
class World:
    cast: dict[str, User]  # role → the person acting in it (tests/portal/authorization_table.ROLES)
    tokens: dict[str, str]  # role → their API token
    ids: dict[str, Any]  # what the table's paths and bodies name
    subject: User  # the caller whose cases and pushes these are; the manager's report
    report: User  # the manager's other report, who holds the grant
    owner: User  # the entitlement's owner


@pytest.fixture
def world(
    time_machine,
    security_admin,
    agent,
    manager,
    subject,
    approver,
    auditor,
    outsider,
    default_policy,
    django_capture_on_commit_callbacks,
) -> World:
    cast = dict(
        employee=outsider,
        agent=agent,
        manager=manager,
        approver=approver,
        auditor=auditor,
        security_admin=security_admin,
    )
    report = UserFactory(username="report", manager=manager)
    owner = UserFactory(username="db.owner")
    time_machine.move_to(TUESDAY_NOON - timedelta(days=30), tick=False)  # factors old enough to count
    for method in ("totp", "email", "sms", "push"):
        factor_enroll(user=subject, method=method)
    backup = factor_enroll(user=manager, method="backup_codes").secrets_to_show
    for person in (*cast.values(), owner):
        authenticator(person)
    time_machine.move_to(TUESDAY_NOON, tick=False)  # a weekday noon: the off-hours rule stays quiet
    for person in (manager, approver):  # the access screens are their working place
        person.is_staff = True
        person.save(update_fields=["is_staff"])
    entitlement = prod_db_entitlement(owner)
    with django_capture_on_commit_callbacks(execute=True):
        opening = {"subject": subject.username, "channel": "walk_in", "ticket": "INC-1"}
        verified = api_post(agent, "/api/v1/verifications/", {**opening, "action": "account_unlock"})
        push = api_post(agent, f"/api/v1/verifications/{verified['id']}/challenges/", {"method": "push"})
        api_post(
            subject,
            f"/api/v1/me/challenges/{push['id']}/",
            {"decision": "approve", "number": push["match_number"]},
        )
        case = api_post(agent, "/api/v1/verifications/", {**opening, "action": "password_reset"})
        challenge = api_post(agent, f"/api/v1/verifications/{case['id']}/challenges/", {"method": "totp"})
        waiting_push = api_post(agent, f"/api/v1/verifications/{case['id']}/challenges/", {"method": "push"})
        pending_request = request_access(manager, subject, entitlement, backup[0])
        approve(owner, pending_request)
        granted_request = request_access(manager, report, entitlement, backup[1])
        approve(owner, granted_request)
        approve(approver, granted_request)
    SubjectHold.objects.create(
        subject=UserFactory(username="held"), reason="reported", until=timezone.now() + timedelta(days=1)
    )
    return World(
        cast=cast,
        tokens={role: ApiToken.issue(person)[1] for role, person in cast.items()},
        ids={
            "subject": subject.username,
            "subject_id": subject.pk,
            "user_type": ContentType.objects.get_for_model(User).pk,
            "entitlement": entitlement.pk,
            "case": case["id"],
            "verified_case": verified["id"],
            "challenge": challenge["id"],
            "push": waiting_push["id"],
            "pending_request": pending_request,
            "grant": Grant.objects.get().pk,
        },
        subject=subject,
        report=report,
        owner=owner,
    )
