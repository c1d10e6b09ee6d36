"""The lost-factor path: manager attestation, ID proofing through a provider, then a
cooling-off any old factor can cancel. Stricter, never weaker."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django_otp.plugins.otp_email.models import EmailDevice

from audit.models import AuditEvent
from portal.roles import Role
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token
from verification.actions import action_execute
from verification.challenges import challenge_create
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.fallback import (
    cooling_off_cancel,
    cooling_off_cancel_by_subject,
    cooling_off_pending_for,
    id_proofing_record,
    register_id_proofing_provider,
)
from verification.models import CaseState, IdProofing, OneTimeLink, VerificationCase
from verification.push import push_decide

pytestmark = pytest.mark.django_db

FALLBACK = {
    "lost_factors": True,
    "action": "mfa_reset",
    "factors": 0,
    "methods": ["manager_attestation"],
    "manager_attestation": True,
    "id_proofing": True,
    "cooling_off_hours": 24,
}


@pytest.fixture
def verifier(security_admin):
    authenticator(security_admin)
    return security_admin


@pytest.fixture
def attested(make_case, agent, manager, enrolled):
    """A lost-factor case whose manager has attested; ID proofing is next."""
    case = make_case(**FALLBACK)
    attestation = challenge_create(case=case, method="manager_attestation", actor=agent)
    push_decide(challenge=attestation, user=manager, decision="approve")
    return VerificationCase.objects.get(pk=case.pk)


def proof(case, verifier, **overrides):
    values = {
        "case": case,
        "verifier": verifier,
        "verifier_code": current_token(authenticator(verifier)),
        "evidence": "passport, last digits 1234",
        **overrides,
    }
    return id_proofing_record(**values)


def test_the_subjects_own_factors_are_not_offered_on_the_lost_factor_path(make_case, agent, enrolled):
    case = make_case(**FALLBACK)
    with pytest.raises(BadRequest) as refused:
        challenge_create(case=case, method="totp", actor=agent)
    assert refused.value.code == "method_not_allowed"


def test_attestation_alone_does_not_verify(attested):
    assert attested.state == CaseState.OPEN


def test_proofing_by_a_designated_verifier_after_their_step_up_verifies_with_cooling_off(
    attested, verifier, run_on_commit
):
    with run_on_commit():
        proofing = proof(attested, verifier)
    assert (proofing.provider, proofing.evidence) == ("in_person", "passport, last digits 1234")
    case = VerificationCase.objects.get(pk=attested.pk)
    assert case.state == CaseState.VERIFIED
    assert case.usable_from - case.verified_at == timedelta(hours=24)
    assert case.verified_until - case.usable_from == timedelta(minutes=10)
    assert AuditEvent.objects.get(verb="id_proofing_recorded").actor == verifier.username
    assert AuditEvent.objects.get(verb="cooling_off_started").data["until"] == case.usable_from.isoformat()


@pytest.mark.parametrize(
    ("who", "code"),
    [("agent", "permission_denied"), ("subject", "permission_denied"), ("manager", "permission_denied")],
)
def test_only_a_designated_verifier_proofs(attested, agent, subject, manager, who, code):
    person = {"agent": agent, "subject": subject, "manager": manager}[who]
    with pytest.raises(NotAllowed) as refused:
        proof(attested, person)
    assert refused.value.code == code
    assert not IdProofing.objects.exists()


def test_the_verifier_is_never_the_agent_of_the_case(make_case, manager, enrolled, verifier):
    verifier.groups.add(Group.objects.get(name=Role.AGENT.group_name))
    case = make_case(by=verifier, **FALLBACK)
    attestation = challenge_create(case=case, method="manager_attestation", actor=verifier)
    push_decide(challenge=attestation, user=manager, decision="approve")
    with pytest.raises(NotAllowed) as refused:
        proof(case, verifier)
    assert refused.value.code == "self_approval"


def test_a_wrong_step_up_code_is_refused_and_the_refusal_stays_on_record(attested, verifier):
    with pytest.raises(NotAllowed) as refused:
        proof(attested, verifier, verifier_code="000000")
    assert refused.value.code == "step_up_failed"
    event = AuditEvent.objects.get(verb="id_proofing_refused")
    assert event.outcome == "blocked" and event.actor == verifier.username
    assert event.data["code"] == "step_up_failed"
    assert VerificationCase.objects.get(pk=attested.pk).state == CaseState.OPEN


def test_proofing_needs_evidence_a_known_provider_and_a_case_awaiting_it(
    attested, verifier, make_case, enrolled, time_machine
):
    with pytest.raises(BadRequest) as empty:
        proof(attested, verifier, evidence="  ")
    assert empty.value.code == "no_evidence"
    with pytest.raises(BadRequest) as unknown:
        proof(attested, verifier, provider="astrology")
    assert unknown.value.code == "unknown_provider"
    with pytest.raises(WrongState):
        proof(make_case(), verifier)
    time_machine.shift(timedelta(seconds=31))
    proof(attested, verifier)
    time_machine.shift(timedelta(seconds=31))
    with pytest.raises(WrongState):
        proof(attested, verifier)


def test_another_provider_can_be_plugged_in(attested, agent):
    class DocumentCheck:
        def check(self, *, case, verifier, verifier_code, evidence):
            if verifier_code != "doc-ok":
                raise NotAllowed("document check failed", code="document_rejected")
            return f"document check {evidence}"

    register_id_proofing_provider("document_check", DocumentCheck())
    with pytest.raises(NotAllowed):
        id_proofing_record(
            case=attested, verifier=agent, verifier_code="forged", evidence="ref 9", provider="document_check"
        )
    proofing = id_proofing_record(
        case=attested, verifier=agent, verifier_code="doc-ok", evidence="ref 9", provider="document_check"
    )
    assert proofing.provider == "document_check" and proofing.evidence == "document check ref 9"
    assert VerificationCase.objects.get(pk=attested.pk).state == CaseState.VERIFIED


@pytest.fixture
def cooling(attested, verifier, subject, sms_outbox, run_on_commit):
    """Verified on the lost-factor path, with a second email factor at its own address."""
    EmailDevice.objects.create(user=subject, name="Private", email="private@example.test", confirmed=True)
    with run_on_commit():
        proof(attested, verifier)
    return VerificationCase.objects.get(pk=attested.pk)


def cancel_links(text: str) -> list[str]:
    return re.findall(r"/verify/cancel/([\w-]+)/", text)


def test_every_old_factor_and_the_email_is_told_and_each_gets_its_own_cancel_link(
    cooling, subject, sms_outbox
):
    told = {m.to[0]: m for m in mail.outbox if "will be reset" in m.subject}
    assert set(told) == {subject.email, "private@example.test"}
    [sms] = sms_outbox()
    assert sms["to"] == subject.phone and "mfa reset" in sms["body"]
    links = [*cancel_links(told[subject.email].body), *cancel_links(told["private@example.test"].body)]
    links += cancel_links(sms["body"])
    assert len(set(links)) == 3
    stored = set(OneTimeLink.objects.filter(kind="cancel").values_list("token_hash", flat=True))
    assert stored == {OneTimeLink.hash_token(token) for token in links}
    assert {link.expires_at for link in OneTimeLink.objects.filter(kind="cancel")} == {cooling.usable_from}


def test_the_action_waits_for_the_cooling_off(cooling, agent, time_machine):
    with pytest.raises(WrongState) as early:
        action_execute(case=cooling, actor=agent)
    assert "cooling-off" in str(early.value)
    time_machine.shift(timedelta(hours=24, minutes=1))
    assert action_execute(case=cooling, actor=agent).state == CaseState.EXECUTED


def test_a_cancel_link_from_the_sms_cancels_and_security_hears_of_it(
    cooling, sms_outbox, security_admin, agent, run_on_commit
):
    [token] = cancel_links(sms_outbox()[0]["body"])
    with run_on_commit():
        cancelled = cooling_off_cancel(token=token)
    assert cancelled.state == CaseState.CANCELLED and "cancel link" in cancelled.closed_reason
    assert AuditEvent.objects.get(verb="case_cancelled").outcome == "blocked"
    assert any("cancelled by subject" in m.subject for m in mail.outbox if security_admin.email in m.to)
    with pytest.raises(WrongState):
        cooling_off_cancel(token=token)
    [other, *_] = cancel_links(next(m.body for m in mail.outbox if "will be reset" in m.subject))
    with pytest.raises(WrongState):
        cooling_off_cancel(token=other)
    with pytest.raises(WrongState):
        action_execute(case=cancelled, actor=agent)


def test_the_subject_can_cancel_from_their_own_page(cooling, subject, outsider):
    assert list(cooling_off_pending_for(subject)) == [cooling]
    assert list(cooling_off_pending_for(outsider)) == []
    with pytest.raises(NotAllowed):
        cooling_off_cancel_by_subject(case=cooling, user=outsider)
    assert cooling_off_cancel_by_subject(case=cooling, user=subject).state == CaseState.CANCELLED
    assert list(cooling_off_pending_for(subject)) == []
    with pytest.raises(WrongState):
        cooling_off_cancel_by_subject(case=cooling, user=subject)


def test_an_ordinary_verified_case_is_not_cancelled_as_a_cooling_off(make_case, agent, enrolled, subject):
    from verification.models import CaseState as State

    case = make_case()
    VerificationCase.objects.filter(pk=case.pk).update(state=State.VERIFIED)
    with pytest.raises(WrongState):
        cooling_off_cancel_by_subject(case=case, user=subject)


def test_unknown_cancel_tokens_are_refused(db):
    with pytest.raises(WrongState) as refused:
        cooling_off_cancel(token="not-a-token")
    assert refused.value.code == "link_invalid"


def me_login(client, user):
    token = current_token(authenticator(user))
    client.post("/me/login/", {"username": user.username, "password": PASSWORD, "otp_token": token})


def test_the_subject_stops_the_reset_from_their_own_page(cooling, subject, outsider, client, enrolled):
    stop = f"/me/resets/{cooling.pk}/cancel/"
    me_login(client, outsider)
    assert client.post(stop).status_code == 404  # not theirs: for them it does not exist
    client.logout()
    me_login(client, subject)
    assert f'id="cooling-{cooling.pk}"' in client.get("/me/").content.decode()

    assert client.post(stop).status_code == 302
    cooling.refresh_from_db()
    assert cooling.state == CaseState.CANCELLED and "own page" in cooling.closed_reason
    assert f'id="cooling-{cooling.pk}"' not in client.get("/me/").content.decode()
    assert AuditEvent.objects.filter(verb="case_cancelled", actor=subject.username).exists()
