"""The lost-factor path: manager attestation plus ID proofing, then a cooling-off
period in which any of the subject's old factors or their email can cancel.
Never a weaker path (OWASP ASVS 6.4.4; NIST SP 800-63B: losing every factor
means proofing again)."""

from typing import Any, Protocol

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_otp.plugins.otp_email.models import EmailDevice

from audit.models import Outcome
from verification.cases import case_evaluate, case_event, lock_case, refusals_audited
from verification.devices import authenticator_of
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.links import link_claim
from verification.models import CaseState, IdProofing, OneTimeLink, SMSDevice, VerificationCase
from verification.notices import notice_email, notice_security, notice_to, sms_notice


class IdProofingProvider(Protocol):
    """Checks that the person is who they claim to be, by some means outside Vigil's
    factors. Raises a VerificationError to refuse; returns what was checked (kept)."""

    def check(self, *, case: VerificationCase, verifier: Any, verifier_code: str, evidence: str) -> str: ...


class InPersonProofing:
    """The built-in provider: a designated verifier (permission
    `verification.perform_id_proofing`) checks the person in front of them, after
    passing their own step-up (a fresh code from their own authenticator)."""

    def check(self, *, case: VerificationCase, verifier: Any, verifier_code: str, evidence: str) -> str:
        if not verifier.has_perm("verification.perform_id_proofing"):
            raise NotAllowed("only designated verifiers record ID proofing")
        if verifier.pk in {case.subject_id, case.agent_id}:
            raise NotAllowed("the verifier must be neither the subject nor the agent", code="self_approval")
        if not evidence.strip():
            raise BadRequest("say what was checked (document type, reference)", code="no_evidence")
        device = authenticator_of(verifier)
        if device is None or not device.verify_token(str(verifier_code).strip()):
            raise NotAllowed("the verifier's own step-up code is wrong", code="step_up_failed")
        return evidence.strip()[:200]


_providers: dict[str, IdProofingProvider] = {"in_person": InPersonProofing()}


def register_id_proofing_provider(name: str, provider: IdProofingProvider) -> None:
    """Add a provider (a document-check service, say), from a higher app's AppConfig.ready()."""
    _providers[name] = provider


def id_proofing_record(
    *, case: VerificationCase, verifier: Any, verifier_code: str, evidence: str, provider: str = "in_person"
) -> IdProofing:
    """1. Lock the case; it must be open, demand proofing, and have none yet.
    2. The provider checks (the built-in one: the verifier's role and own step-up).
    3. Keep what was checked; the case may now be verified (then cooling-off starts).
    A refusal is audited as `id_proofing_refused`."""
    with refusals_audited("id_proofing_refused", case, actor=verifier, data={"provider": provider[:40]}):
        return _id_proofing_record(
            case=case, verifier=verifier, verifier_code=verifier_code, evidence=evidence, provider=provider
        )


@transaction.atomic
def _id_proofing_record(
    *, case: VerificationCase, verifier: Any, verifier_code: str, evidence: str, provider: str
) -> IdProofing:
    checker = _providers.get(provider)
    if checker is None:
        raise BadRequest(f"no ID proofing provider {provider!r}", code="unknown_provider")
    case = lock_case(case)
    if case.state != CaseState.OPEN or not case.requirements.get("id_proofing"):
        raise WrongState("this case does not await ID proofing")
    if IdProofing.objects.filter(case=case).exists():
        raise WrongState("ID proofing is already recorded for this case")
    checked = checker.check(case=case, verifier=verifier, verifier_code=verifier_code, evidence=evidence)
    proofing = IdProofing.objects.create(case=case, verifier=verifier, provider=provider, evidence=checked)
    case_event("id_proofing_recorded", case, actor=verifier, data={"provider": provider})
    case_evaluate(case)
    return proofing


def cooling_off_start(case: VerificationCase) -> None:
    """Tell the subject's email, their email factors and their SMS factors "your
    factors will be reset at T — cancel?"; each message carries its own cancel link,
    and the subject's own page offers the same while they can still log in."""
    assert case.usable_from is not None  # set by case_evaluate just before
    when = f"{case.usable_from:%Y-%m-%d %H:%M} UTC"
    what = case.action.replace("_", " ")
    message = (
        f"The service desk ({case.agent.get_username()}, ticket {case.ticket or 'none'}) verified a request "
        f"to {what} for your account without your usual factors. It will take effect at {when} unless "
        "you cancel it."
    )
    link: dict[str, Any] = {
        "case": case,
        "link_kind": OneTimeLink.Kind.CANCEL,
        "link_expires_at": case.usable_from,
    }
    subject = case.subject
    headline = "Your MFA will be reset — cancel?"
    notice_to(subject, headline=headline, message=message, link_label="Cancel this", **link)
    addresses = set(
        EmailDevice.objects.filter(user=subject, confirmed=True)
        .exclude(email__isnull=True)
        .exclude(email="")
        .values_list("email", flat=True)
    ) - {subject.email}
    name = subject.get_full_name() or subject.get_username()
    for address in sorted(addresses):
        notice_email(address, name=name, headline=headline, message=message, link_label="Cancel this", **link)
    numbers = set(SMSDevice.objects.filter(user=subject, confirmed=True).values_list("number", flat=True))
    for number in sorted(numbers):
        sms_notice(number, f"Vigil: {what} on your account at {when}. Not you? Cancel:", **link)
    case_event(
        "cooling_off_started",
        case,
        outcome=Outcome.INFO,
        data={"until": case.usable_from.isoformat(), "emails": 1 + len(addresses), "sms": len(numbers)},
    )


def cooling_off_pending_for(user: Any) -> QuerySet[VerificationCase]:
    """Lost-factor cases about `user` still in their cooling-off, for their own page."""
    return VerificationCase.objects.filter(
        subject=user, lost_factors=True, state=CaseState.VERIFIED, usable_from__gt=timezone.now()
    ).select_related("agent")


def cooling_off_cancel(*, token: str) -> VerificationCase:
    """Cancel through the link one of the old factors received."""
    with transaction.atomic():
        link = link_claim(token=token, kind=OneTimeLink.Kind.CANCEL)
        return _cancel(link.case, actor=link.user, via="cancel link")


@transaction.atomic
def cooling_off_cancel_by_subject(*, case: VerificationCase, user: Any) -> VerificationCase:
    """Cancel from the subject's own page (logged in with a factor they still have)."""
    if case.subject_id != user.pk:
        raise NotAllowed("only the subject may cancel this reset")
    return _cancel(case, actor=user, via="own page")


def _cancel(case: VerificationCase, *, actor: Any, via: str) -> VerificationCase:
    case = lock_case(case)
    if case.state != CaseState.VERIFIED or not case.lost_factors:
        raise WrongState(f"the request is already {case.state}")
    case.state = CaseState.CANCELLED
    case.closed_reason = f"cancelled by the subject during cooling-off ({via})"
    case.save(update_fields=["state", "closed_reason"])
    case_event(
        "case_cancelled",
        case,
        outcome=Outcome.BLOCKED,
        actor=actor,
        data={"reason": "cancelled during cooling-off", "via": via},
    )
    notice_security(
        headline=f"Lost-factor reset cancelled by {case.subject.get_username()}",
        message=f"The {case.action.replace('_', ' ')} verified by {case.agent.get_username()} (ticket "
        f"{case.ticket or 'none'}) was cancelled by the subject ({via}): "
        "the caller may have been an impostor.",
    )
    return case
