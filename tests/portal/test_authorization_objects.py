"""Object-level authorisation: nobody reads or runs another's case, push, request or
grant unless their role allows it, and a refusal changes nothing."""

import pytest

from audit.models import AuditEvent
from policies.models import AccessRequest, Grant
from portal.roles import Role
from tests.factories import UserFactory
from tests.otp import authenticator, current_token, otp_login
from tests.policies.conftest import TUESDAY_NOON
from tests.portal.conftest import World, api_for, api_post
from verification.models import Challenge, VerificationCase

pytestmark = pytest.mark.django_db


def post(user, path, body=None):
    return api_for(user).post(path, body or {}, format="json")


def states(world: World) -> dict[str, str]:
    ids = world.ids
    return {
        "case": VerificationCase.objects.get(pk=ids["case"]).state,
        "verified_case": VerificationCase.objects.get(pk=ids["verified_case"]).state,
        "challenge": Challenge.objects.get(pk=ids["challenge"]).state,
        "push": Challenge.objects.get(pk=ids["push"]).state,
        "request": AccessRequest.objects.get(pk=ids["pending_request"]).state,
        "grant": Grant.objects.get(pk=ids["grant"]).state(TUESDAY_NOON),
    }


def test_another_agent_can_neither_see_nor_run_a_case(world, client):
    other = UserFactory(username="agent.b", is_staff=True, roles=[Role.AGENT])
    before, ids = states(world), world.ids
    case = f"/api/v1/verifications/{ids['case']}"
    assert api_for(other).get(f"{case}/").status_code == 404
    assert post(other, f"{case}/challenges/", {"method": "sms_otp"}).status_code == 404
    assert (
        post(other, f"/api/v1/challenges/{ids['challenge']}/answer/", {"code": "000000"}).status_code == 404
    )
    assert post(other, f"/api/v1/verifications/{ids['verified_case']}/execute/").status_code == 404
    assert post(other, f"{case}/escalate/").status_code == 404
    assert post(other, f"{case}/cancel/").status_code == 404
    otp_login(client, other)
    assert client.get(f"/admin/console/case/{ids['case']}/").status_code == 404
    assert client.post(f"/admin/console/case/{ids['case']}/", {"op": "cancel"}).status_code == 404
    assert states(world) == before
    assert Challenge.objects.get(pk=ids["challenge"]).attempts == 0


def test_an_employee_cannot_see_or_answer_anothers_push(world, client):
    push, outsider = world.ids["push"], world.cast["employee"]
    assert [c["id"] for c in api_for(world.subject).get("/api/v1/me/challenges/").json()] == [push]
    assert api_for(outsider).get("/api/v1/me/challenges/").json() == []
    assert post(outsider, f"/api/v1/me/challenges/{push}/", {"decision": "report"}).status_code == 404
    token = current_token(authenticator(outsider))
    login = {"username": outsider.username, "password": "correct-horse-battery", "otp_token": token}
    assert client.post("/me/login/", login).status_code == 302
    assert client.post(f"/me/challenges/{push}/", {"decision": "deny"}).status_code == 404
    assert list(client.get("/me/").context["pending"]) == []
    assert Challenge.objects.get(pk=push).state == "sent"
    assert (
        post(world.subject, f"/api/v1/me/challenges/{push}/", {"decision": "deny"}).json()["state"]
        == "denied"
    )


def test_a_manager_sees_and_asks_only_for_their_own_reports(world, client):
    other = UserFactory(username="manager.b", is_staff=True, roles=[Role.MANAGER])
    before, request_path = states(world), f"/api/v1/access-requests/{world.ids['pending_request']}"
    assert api_for(other).get(f"{request_path}/").status_code == 404
    for step in ("approve", "deny", "cancel"):
        assert post(other, f"{request_path}/{step}/").status_code == 404
    assert api_for(other).get("/api/v1/grants/").json() == []
    assert [g["id"] for g in api_for(world.cast["manager"]).get("/api/v1/grants/").json()] == [
        world.ids["grant"]
    ]
    asked = post(
        other,
        "/api/v1/access-requests/",
        {
            "beneficiary": world.subject.username,
            "entitlement": world.ids["entitlement"],
            "justification": "x",
            "duration_minutes": 30,
        },
    )
    assert (asked.status_code, asked.json()["code"]) == (403, "not_manager")
    otp_login(client, other)
    assert (
        f"request-{world.ids['pending_request']}"
        not in client.get("/admin/policies/accessrequest/waiting/").content.decode()
    )
    assert client.get("/admin/policies/accessrequest/").context["cl"].result_count == 0
    change = client.get(f"/admin/policies/accessrequest/{world.ids['pending_request']}/change/")
    assert (change.status_code, change.url) == (302, "/admin/")
    assert states(world) == before


def test_neither_requester_nor_beneficiary_approves_their_own_request(world):
    path = f"/api/v1/access-requests/{world.ids['pending_request']}/approve/"
    for person in (world.cast["manager"], world.subject):
        code = current_token(authenticator(person))
        refused = post(person, path, {"step_up_code": code})
        assert (refused.status_code, refused.json()["code"]) == (403, "self_approval")
    assert AccessRequest.objects.get(pk=world.ids["pending_request"]).state == "pending_approval"


def test_an_approver_cannot_approve_their_own_request(world, client):
    approver = world.cast["approver"]
    asked = api_post(
        approver,
        "/api/v1/access-requests/",
        {
            "beneficiary": approver.username,
            "entitlement": world.ids["entitlement"],
            "justification": "x",
            "duration_minutes": 30,
        },
    )
    case = f"/api/v1/verifications/{asked['verification']}"
    totp = api_post(approver, f"{case}/challenges/", {"method": "totp"})
    api_post(
        approver, f"/api/v1/challenges/{totp['id']}/answer/", {"code": current_token(authenticator(approver))}
    )
    assert AccessRequest.objects.get(pk=asked["id"]).state == "pending_approval"
    otp_login(client, approver)
    waiting = client.get("/admin/policies/accessrequest/waiting/").content.decode()
    assert f"request-{world.ids['pending_request']}" in waiting and f"request-{asked['id']}" not in waiting
    code = current_token(authenticator(approver))
    refused = post(approver, f"/api/v1/access-requests/{asked['id']}/approve/", {"step_up_code": code})
    assert (refused.status_code, refused.json()["code"]) == (403, "self_approval")
    assert AccessRequest.objects.get(pk=asked["id"]).state == "pending_approval"


def test_only_approvers_and_security_admins_revoke_a_grant(world):
    path = f"/api/v1/grants/{world.ids['grant']}/revoke/"
    cast = world.cast
    assert [g["id"] for g in api_for(world.report).get("/api/v1/grants/").json()] == [world.ids["grant"]]
    for person in (world.report, cast["manager"], cast["auditor"]):  # each may see it
        assert post(person, path, {"reason": "x"}).status_code == 403
    for person in (cast["employee"], cast["agent"]):  # neither may see it
        assert post(person, path, {"reason": "x"}).status_code == 404
    assert Grant.objects.get(pk=world.ids["grant"]).state(TUESDAY_NOON) == "active"
    assert post(cast["approver"], path, {"reason": "left the team"}).json()["state"] == "revoked"


def test_the_auditor_reads_everything_and_changes_nothing(world, client):
    auditor, ids, before = world.cast["auditor"], world.ids, states(world)
    case = f"/api/v1/verifications/{ids['case']}"
    assert api_for(auditor).get(f"{case}/").status_code == 200
    writes = [
        (f"{case}/challenges/", {"method": "sms_otp"}),
        (f"/api/v1/challenges/{ids['challenge']}/answer/", {"code": "000000"}),
        (f"/api/v1/verifications/{ids['verified_case']}/execute/", {}),
        (f"{case}/escalate/", {}),
        (f"{case}/cancel/", {}),
        (f"/api/v1/access-requests/{ids['pending_request']}/approve/", {}),
        (f"/api/v1/access-requests/{ids['pending_request']}/deny/", {}),
        (f"/api/v1/access-requests/{ids['pending_request']}/cancel/", {}),
        (f"/api/v1/grants/{ids['grant']}/revoke/", {"reason": "x"}),
    ]
    assert {path: post(auditor, path, body).status_code for path, body in writes} == {
        path: 403 for path, _ in writes
    }
    otp_login(client, auditor)
    assert client.get(f"/admin/console/case/{ids['case']}/").status_code == 200
    for op in ("cancel", "escalate", "challenge", "execute", "proof"):
        assert client.post(f"/admin/console/case/{ids['case']}/", {"op": op}).status_code == 403
    assert states(world) == before
    refused = AuditEvent.objects.filter(actor=auditor.username, outcome="blocked").values_list(
        "verb", flat=True
    )
    assert {"case_cancel_refused", "case_escalate_refused"} <= set(refused)


def test_a_security_admin_cannot_make_a_superuser_or_take_one_over(world, client):
    security_admin = world.cast["security_admin"]
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    otp_login(client, security_admin)
    assert client.get(f"/admin/portal/user/{root.pk}/change/").context["has_change_permission"] is False
    assert client.post(f"/admin/portal/user/{root.pk}/change/", {"email": "me@evil.test"}).status_code == 403
    assert client.get(f"/admin/portal/user/{root.pk}/password/").status_code == 403
    page = client.get(f"/admin/portal/user/{security_admin.pk}/change/")
    form = page.context["adminform"].form
    assert "is_superuser" not in form.fields and "user_permissions" not in form.fields
    assert "groups" in form.fields  # roles are theirs to give


def test_nobody_but_a_superuser_sets_a_password_in_the_admin(world, client):
    """A reset goes through a verified case; the admin's password form is no way around it."""
    security_admin, report = world.cast["security_admin"], world.report
    otp_login(client, security_admin)
    before = report.password
    refused = client.post(
        f"/admin/portal/user/{report.pk}/password/",
        {"password1": "Chosen-by-the-caller-1", "password2": "Chosen-by-the-caller-1"},
    )
    assert refused.status_code == 403
    report.refresh_from_db()
    assert report.password == before
    event = AuditEvent.objects.get(verb="password_set_refused")
    assert (event.actor, event.subject) == (security_admin.username, report.username)
    assert event.outcome == "blocked"
