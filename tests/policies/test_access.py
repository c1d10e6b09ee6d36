"""Access requests end to end through the API: step-up, approvals, grant, expiry."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail

from audit.models import AuditEvent
from policies.grants import grants_sweep
from policies.models import AccessRequest, Entitlement, Grant
from portal.models import User
from portal.roles import Role
from tests.otp import current_token
from tests.policies.conftest import TUESDAY_NOON, client_for, grant_in_place

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business_hours")]


def submit(manager, subject, entitlement, minutes=30, **extra):
    return client_for(manager).post(
        "/api/v1/access-requests/",
        {
            "beneficiary": subject.username,
            "entitlement": entitlement.pk,
            "justification": "incident INC-9",
            "duration_minutes": minutes,
            "ticket": "INC-9",
            **extra,
        },
        format="json",
    )


def step_up(manager, case_id, devices):
    api = client_for(manager)
    case = api.get(f"/api/v1/verifications/{case_id}/").json()
    assert case["requirements"]["factors"] == 2  # tier 3: requester is not the beneficiary
    first = api.post(f"/api/v1/verifications/{case_id}/challenges/", {"method": "totp"}, format="json").json()
    assert (
        api.post(
            f"/api/v1/challenges/{first['id']}/answer/",
            {"code": current_token(devices["totp"])},
            format="json",
        ).json()["state"]
        == "passed"
    )
    second = api.post(
        f"/api/v1/verifications/{case_id}/challenges/", {"method": "backup_code"}, format="json"
    ).json()
    assert (
        api.post(
            f"/api/v1/challenges/{second['id']}/answer/",
            {"code": devices["backup"].secrets_to_show[0]},
            format="json",
        ).json()["state"]
        == "passed"
    )


def approve(user, request_id, **extra):
    code = current_token(user.authenticatordevice_set.get()) if user.authenticatordevice_set.exists() else ""
    return client_for(user).post(
        f"/api/v1/access-requests/{request_id}/approve/",
        {"comment": "ok", "step_up_code": code, **extra},
        format="json",
    )


def full_grant(manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks, minutes=30):
    created = submit(manager, subject, prod_db, minutes).json()
    step_up(manager, created["verification"], people)
    approve(prod_db.owner, created["id"])
    with django_capture_on_commit_callbacks(execute=True):
        result = approve(approver, created["id"]).json()
    return created, result


def test_request_step_up_approvals_grant_and_expiry(
    manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks, time_machine
):
    created = submit(manager, subject, prod_db).json()
    assert created["state"] == "pending_verification" and created["verification"]
    assert not subject.has_perm("policies.view_riskrule")
    premature = approve(approver, created["id"])
    assert premature.status_code == 409
    step_up(manager, created["verification"], people)
    assert AccessRequest.objects.get(pk=created["id"]).state == "pending_approval"
    assert approve(prod_db.owner, created["id"]).json()["state"] == "pending_approval"  # 2 needed at tier 3
    with django_capture_on_commit_callbacks(execute=True):
        done = approve(approver, created["id"]).json()
    assert done["state"] == "active"
    grant = Grant.objects.get()
    assert grant.expires_at - grant.starts_at == timedelta(minutes=30)
    assert grant.provisioning == "provisioned"
    assert User.objects.get(pk=subject.pk).has_perm("policies.view_riskrule")
    assert any("Access approved" in m.subject for m in mail.outbox)
    listed = client_for(manager).get("/api/v1/grants/?active=true").json()
    assert [g["id"] for g in listed] == [grant.pk] and listed[0]["state"] == "active"

    time_machine.shift(timedelta(minutes=29, seconds=59))
    assert User.objects.get(pk=subject.pk).has_perm("policies.view_riskrule")
    time_machine.shift(timedelta(seconds=1))
    # At expires_at the permission is gone, before any worker has run.
    assert not User.objects.get(pk=subject.pk).has_perm("policies.view_riskrule")
    assert subject.groups.filter(pk=prod_db.group.pk).exists()
    assert grants_sweep()["ended"] == 1
    assert not subject.groups.filter(pk=prod_db.group.pk).exists()
    assert AccessRequest.objects.get(pk=created["id"]).state == "expired"
    assert AuditEvent.objects.filter(verb="grant_expired").exists()


def test_only_the_beneficiary_or_their_manager_asks(outsider, subject, prod_db, people):
    response = submit(outsider, subject, prod_db)
    assert response.status_code == 403 and response.json()["code"] == "not_manager"


def test_duration_is_capped_with_the_cap_named(manager, subject, prod_db, people):
    response = submit(manager, subject, prod_db, minutes=61)
    assert response.status_code == 400 and "1 to 60 minutes" in response.json()["detail"]
    assert AccessRequest.objects.count() == 0


def test_requester_and_beneficiary_never_approve(manager, subject, approver, prod_db, people):
    created = submit(manager, subject, prod_db).json()
    step_up(manager, created["verification"], people)
    manager.groups.add(Group.objects.get(name=Role.APPROVER.group_name))
    assert approve(manager, created["id"]).json()["code"] == "self_approval"
    subject.groups.add(Group.objects.get(name=Role.APPROVER.group_name))
    assert approve(subject, created["id"]).json()["code"] == "self_approval"


def test_eligibility_is_checked_when_approving_and_high_tiers_need_a_step_up(
    manager, subject, approver, prod_db, people, time_machine
):
    created = submit(manager, subject, prod_db).json()
    step_up(manager, created["verification"], people)
    approver.groups.clear()
    assert approve(approver, created["id"]).status_code == 404  # no longer theirs to see (CONTRACT)
    approver.groups.add(Group.objects.get(name=Role.APPROVER.group_name))
    approver = User.objects.get(pk=approver.pk)  # as the next request loads them, permissions afresh
    refused = approve(approver, created["id"], step_up_code="000000")
    assert refused.status_code == 403 and refused.json()["code"] == "step_up_failed"
    assert AuditEvent.objects.filter(verb="approver_step_up_failed").exists()
    time_machine.shift(timedelta(seconds=2))  # django-otp throttles the device after a failure
    assert approve(approver, created["id"]).status_code == 200


def test_approving_twice_or_a_decided_request_is_409(
    manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks
):
    created, _ = full_grant(manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks)
    again = approve(approver, created["id"])
    assert again.status_code == 409
    denied = client_for(approver).post(
        f"/api/v1/access-requests/{created['id']}/deny/", {"comment": "no"}, format="json"
    )
    assert denied.status_code == 409


def test_deny_closes_the_request_with_the_comment(manager, subject, approver, prod_db, people):
    created = submit(manager, subject, prod_db).json()
    step_up(manager, created["verification"], people)
    response = client_for(approver).post(
        f"/api/v1/access-requests/{created['id']}/deny/", {"comment": "use the read replica"}, format="json"
    )
    assert response.json()["state"] == "denied"
    assert "use the read replica" in response.json()["closed_reason"]


def test_separation_of_duties_denies_naming_the_conflicting_grant(
    manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks
):
    audit_group = Group.objects.create(name="prod-db-auditors")
    auditing = Entitlement.objects.create(
        name="Prod DB audit",
        system="PostgreSQL prod",
        owner=prod_db.owner,
        tier=prod_db.tier,
        max_minutes=60,
        group=audit_group,
    )
    auditing.conflicts.add(prod_db)
    full_grant(manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks)
    created = submit(manager, subject, auditing).json()
    with time_machine.travel(TUESDAY_NOON + timedelta(seconds=31), tick=False):
        step_up(
            manager,
            created["verification"],
            {
                **people,
                "backup": type(people["backup"])(
                    people["backup"].device, people["backup"].secrets_to_show[1:]
                ),
            },
        )
        approve(prod_db.owner, created["id"])
        result = approve(approver, created["id"]).json()
    assert result["state"] == "denied"
    assert "separation of duties" in result["closed_reason"] and "Prod DB admin" in result["closed_reason"]


def test_overlapping_grants_keep_access_until_the_last_ends(
    manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks, time_machine
):
    full_grant(manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks, minutes=10)
    first = Grant.objects.get()
    second = grant_in_place(prod_db, subject, manager, minutes=30)
    time_machine.shift(timedelta(minutes=11))
    grants_sweep()
    first.refresh_from_db()
    assert first.ended_at is not None
    assert subject.groups.filter(pk=prod_db.group.pk).exists()
    assert User.objects.get(pk=subject.pk).has_perm("policies.view_riskrule")
    time_machine.shift(timedelta(minutes=20))
    grants_sweep()
    second.refresh_from_db()
    assert second.ended_at is not None and not subject.groups.filter(pk=prod_db.group.pk).exists()


def test_revoke_takes_access_away_at_once(
    manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks, outsider
):
    full_grant(manager, subject, approver, prod_db, people, django_capture_on_commit_callbacks)
    grant = Grant.objects.get()
    refused = client_for(outsider).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json")
    assert refused.status_code == 404  # not theirs (CONTRACT); who may see it but not revoke it gets 403
    refused = client_for(subject).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json")
    assert refused.status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        revoked = client_for(approver).post(
            f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "incident over"}, format="json"
        )
    assert revoked.json()["state"] == "revoked"
    assert not User.objects.get(pk=subject.pk).has_perm("policies.view_riskrule")
    assert not subject.groups.filter(pk=prod_db.group.pk).exists()
    again = client_for(approver).post(f"/api/v1/grants/{grant.pk}/revoke/", {"reason": "x"}, format="json")
    assert again.status_code == 409


def test_unanswered_requests_expire_after_the_wait(manager, subject, prod_db, people, time_machine):
    from policies.access import requests_expire

    created = submit(manager, subject, prod_db).json()
    time_machine.shift(timedelta(hours=73))
    assert requests_expire() == 1
    assert AccessRequest.objects.get(pk=created["id"]).state == "expired"


def test_requester_cancels_a_pending_request(manager, subject, prod_db, people, approver):
    created = submit(manager, subject, prod_db).json()
    assert client_for(approver).post(f"/api/v1/access-requests/{created['id']}/cancel/").status_code == 403
    cancelled = client_for(manager).post(f"/api/v1/access-requests/{created['id']}/cancel/")
    assert cancelled.json()["state"] == "cancelled"
    assert client_for(manager).post(f"/api/v1/access-requests/{created['id']}/cancel/").status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"beneficiary": "ghost", "entitlement": 1, "justification": "x", "duration_minutes": 5},
        {"beneficiary": "subject", "entitlement": 999, "justification": "x", "duration_minutes": 5},
        {"beneficiary": "subject", "entitlement": 1, "justification": "x", "duration_minutes": 0},
        {"beneficiary": "subject", "entitlement": 1, "justification": "x", "duration_minutes": "soon"},
        {},
    ],
)
def test_bad_request_input_is_400(manager, subject, prod_db, people, body):
    response = client_for(manager).post("/api/v1/access-requests/", body, format="json")
    assert response.status_code == 400 and set(response.json()) >= {"detail", "code"}


def test_entitlements_list_shows_the_capped_duration(manager, prod_db):
    listed = client_for(manager).get("/api/v1/entitlements/").json()
    assert listed == [
        {"id": prod_db.pk, "name": "Prod DB admin", "system": "PostgreSQL prod", "tier": 2, "max_minutes": 60}
    ]
