"""The lost-factor path: manager attestation plus ID proofing, then a cooling-off
period in which any of the subject's old factors or their email can cancel.
Never a weaker path (OWASP ASVS 6.4.4; NIST SP 800-63B: losing every factor
means proofing again)."""

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.models import Outcome
from verification.cases import case_evaluate, case_event, lock_case
from verification.devices import authenticator_of
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.links import link_claim
from verification.models import CaseState, IdProofing, OneTimeLink, SMSDevice, VerificationCase
from verification.notices import notice_to, sms_notice


@transaction.atomic
def id_proofing_record(
    *, case: VerificationCase, verifier: Any, verifier_code: str, evidence: str
) -> IdProofing:
    """The built-in provider: a designated verifier checks the person in front of
    them, after passing their own step-up (a fresh code from their own app)."""
    case = lock_case(case)
    if not verifier.has_perm("verification.perform_id_proofing"):
        raise NotAllowed("only designated verifiers record ID proofing")
    if verifier.pk in {case.subject_id, case.agent_id}:
        raise NotAllowed("the verifier must be neither the subject nor the agent", code="self_approval")
    if case.state != CaseState.OPEN or not case.requirements.get("id_proofing"):
        raise WrongState("this case does not await ID proofing")
    if IdProofing.objects.filter(case=case).exists():
        raise WrongState("ID proofing is already recorded for this case")
    if not evidence.strip():
        raise BadRequest("say what was checked (document type, reference)", code="no_evidence")
    device = authenticator_of(verifier)
    if device is None or not device.verify_token(str(verifier_code).strip()):
        case_event("id_proofing_step_up_failed", case, outcome=Outcome.FAILURE, actor=verifier)
        raise NotAllowed("the verifier's own step-up code is wrong", code="step_up_failed")
    proofing = IdProofing.objects.create(case=case, verifier=verifier, evidence=evidence.strip()[:200])
    case_event("id_proofing_recorded", case, actor=verifier, data={"provider": proofing.provider})
    case_evaluate(case)
    return proofing


def cooling_off_start(case: VerificationCase) -> None:
    """Tell the subject's email and every old factor that can receive a message:
    "your factors will be reset at T — cancel?"; any of them can cancel."""
    token = secrets.token_urlsafe(32)
    assert case.usable_from is not None  # set by case_evaluate just before
    OneTimeLink.objects.create(
        kind=OneTimeLink.Kind.CANCEL,
        case=case,
        user=case.subject,
        token_hash=OneTimeLink.hash_token(token),
        expires_at=case.usable_from,
    )
    link = f"{settings.PORTAL_URL}/verify/cancel/{token}/"
    when = f"{case.usable_from:%Y-%m-%d %H:%M} UTC"
    message = (
        f"The service desk verified a request to {case.action.replace('_', ' ')} for your account without "
        f"your usual factors. It will take effect at {when} unless you cancel it."
    )
    notice_to(
        case.subject,
        headline="Your MFA will be reset — cancel?",
        message=message,
        link=link,
        link_label="Cancel this reset",
    )
    for device in SMSDevice.objects.filter(user=case.subject, confirmed=True):
        sms_notice(device.number, f"Vigil: your MFA will be reset at {when}. Not you? Cancel: {link}")
    case_event(
        "cooling_off_started", case, outcome=Outcome.INFO, data={"until": case.usable_from.isoformat()}
    )


@transaction.atomic
def cooling_off_cancel(*, token: str) -> VerificationCase:
    link = link_claim(token=token, kind=OneTimeLink.Kind.CANCEL)
    case = lock_case(link.case)
    if case.state != CaseState.VERIFIED:
        raise WrongState(f"the request is already {case.state}")
    case.state, case.closed_reason = CaseState.CANCELLED, "cancelled by the subject during cooling-off"
    case.save(update_fields=["state", "closed_reason"])
    case_event(
        "case_cancelled",
        case,
        outcome=Outcome.BLOCKED,
        actor=case.subject,
        data={"reason": "cancelled during cooling-off"},
    )
    return case
