"""The access screens in the admin: submit, step-up, waiting for me, grants."""

from datetime import timedelta

import pytest

from policies.models import AccessRequest, Grant
from tests.otp import current_token, otp_login
from tests.policies.conftest import TUESDAY_NOON

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business_hours")]


@pytest.fixture
def manager_client(client, manager):
    manager.is_staff = True
    manager.save()
    otp_login(client, manager)
    return client


def test_manager_submits_for_a_report_only_and_is_sent_to_the_step_up(
    manager_client, subject, outsider, prod_db, people
):
    page = manager_client.get("/admin/policies/accessrequest/add/").content.decode()
    assert subject.username in page and outsider.username not in page and "up to 60 min" in page
    refused = manager_client.post(
        "/admin/policies/accessrequest/add/",
        {"beneficiary": outsider.pk, "entitlement": prod_db.pk, "duration_minutes": 30, "justification": "x"},
    )
    assert refused.status_code == 200 and "beneficiary" in refused.context["form"].errors
    too_long = manager_client.post(
        "/admin/policies/accessrequest/add/",
        {"beneficiary": subject.pk, "entitlement": prod_db.pk, "duration_minutes": 90, "justification": "x"},
    )
    assert "1 to 60 minutes" in too_long.content.decode()
    response = manager_client.post(
        "/admin/policies/accessrequest/add/",
        {
            "beneficiary": subject.pk,
            "entitlement": prod_db.pk,
            "duration_minutes": 30,
            "justification": "fix",
        },
    )
    created = AccessRequest.objects.get()
    assert response.url == f"/admin/console/case/{created.verification_id}/"
    console = manager_client.get(response.url).content.decode()
    assert "Challenge totp" in console and "Execute" not in console


def test_approver_decides_from_waiting_for_me_and_the_grant_is_listed(
    client, manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks
):
    from tests.policies.test_access import approve, step_up, submit

    created = submit(manager, subject, prod_db).json()
    step_up(manager, created["verification"], people)
    approve(prod_db.owner, created["id"])
    approver.is_staff = True
    approver.save()
    device = otp_login(client, approver)
    page = client.get("/admin/policies/accessrequest/waiting/").content.decode()
    assert f"request-{created['id']}" in page and "your authenticator code" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/policies/accessrequest/waiting/",
            {
                "request": created["id"],
                "decision": "approve",
                "comment": "ok",
                "step_up_code": current_token(device),
            },
        )
    assert AccessRequest.objects.get(pk=created["id"]).state == "active"
    grants = client.get("/admin/policies/grant/").content.decode()
    assert "Prod DB admin" in grants and "0:30:00" in grants
    grant = Grant.objects.get()
    client.post("/admin/policies/grant/", {"action": "revoke_grants", "_selected_action": [grant.pk]})
    grant.refresh_from_db()
    assert grant.revoked_at is not None and "revoked in the admin" in grant.revoke_reason


def test_grant_changelist_costs_a_constant_number_of_queries(
    client, security_admin, prod_db, subject, manager, django_assert_max_num_queries
):
    for n in range(15):
        request = AccessRequest.objects.create(
            requester=manager,
            beneficiary=subject,
            entitlement=prod_db,
            justification="x",
            duration_minutes=10,
            respond_by=TUESDAY_NOON,
        )
        Grant.objects.create(
            request=request,
            user=subject,
            entitlement=prod_db,
            starts_at=TUESDAY_NOON,
            expires_at=TUESDAY_NOON + timedelta(minutes=10 + n),
        )
    otp_login(client, security_admin)
    with django_assert_max_num_queries(12):
        assert client.get("/admin/policies/grant/").status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get("/admin/policies/accessrequest/").status_code == 200
