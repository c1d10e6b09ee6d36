"""Actions run only for a verified, unconsumed, in-window case of the same subject
and action — checked here, in the service, whoever calls it (DESIGN "verification")."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from verification.cases import case_event, lock_case
from verification.channels import DeliveryError, webhook_post
from verification.devices import DEVICE_METHODS, mask_email, mask_phone
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import CaseState, OneTimeLink, Purpose, VerificationCase
from verification.notices import DELIVERY_LEASE, enqueue_on_commit, notice_email, notice_to, sms_notice

Executor = Callable[[VerificationCase, dict[str, Any]], dict[str, Any]]


def _link_email(case: VerificationCase, kind: str, headline: str, label: str) -> dict[str, Any]:
    """The link itself is made when the email goes out: the agent, the database and
    the broker never hold it in clear."""
    notice_to(
        case.subject,
        headline=headline,
        message=f"The service desk ({case.agent.get_username()}, ticket {case.ticket or 'none'}) "
        "verified you and sent this link. It works once, for 20 minutes.",
        link_label=label,
        case=case,
        link_kind=kind,
    )
    return {"message": f"Link sent to {mask_email(case.subject.email)}"}


def _password_reset(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    if not case.subject.email:
        raise BadRequest("the subject has no email address for the reset link", code="no_email")
    return _link_email(case, OneTimeLink.Kind.PASSWORD_RESET, "Reset your password", "Choose a new password")


def _device_enrollment(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    if not case.subject.email:
        raise BadRequest("the subject has no email address for the enrolment link", code="no_email")
    return _link_email(case, OneTimeLink.Kind.ENROLMENT, "Enrol a new authenticator", "Enrol now")


def _mfa_reset(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    removed = 0
    for model, _ in DEVICE_METHODS:
        # Count devices, not the backup codes deleted with them.
        removed += model.objects.filter(user=case.subject).delete()[1].get(model._meta.label, 0)
    result = _device_enrollment(case, params)
    return {**result, "factors_removed": removed}


def _account_unlock(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    subject = case.subject
    subject.is_active = True
    subject.status = "active"
    subject.save(update_fields=["is_active", "status"])
    return {"message": f"{subject.get_username()} unlocked"}


def _contact_change(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    subject = case.subject
    email, phone = str(params.get("email") or "").strip(), str(params.get("phone") or "").strip()
    if not email and not phone:
        raise BadRequest("give the new email and/or phone", code="no_change")
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise BadRequest(f"bad email {email!r}", code="bad_email") from exc
    if phone:
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException as exc:
            raise BadRequest(
                f"bad phone {phone!r}: use E.164 such as +15551234567", code="bad_phone"
            ) from exc
        if not phonenumbers.is_valid_number(parsed):
            raise BadRequest(f"bad phone {phone!r}", code="bad_phone")
        phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    subject.email = email or subject.email
    subject.phone = phone or subject.phone
    subject.contact_changed_at = timezone.now()
    subject.save(update_fields=["email", "phone", "contact_changed_at"])
    return {
        "message": "contact details updated",
        "email": mask_email(subject.email),
        "phone": mask_phone(subject.phone),
    }


def _webhook(case: VerificationCase, params: dict[str, Any]) -> dict[str, Any]:
    """IdP automation: a signed POST by the worker, retried; the result lands on the case."""
    if not settings.ACTION_WEBHOOK_URL:
        return {"message": "no IdP webhook configured: complete this action by hand", "delivery": "manual"}
    enqueue_on_commit("action_webhook_deliver", case.pk)
    return {"message": "sent to the identity provider", "delivery": "queued"}


EXECUTORS: dict[str, Executor] = {
    "password_reset": _password_reset,
    "mfa_reset": _mfa_reset,
    "device_enrollment": _device_enrollment,
    "account_unlock": _account_unlock,
    "contact_change": _contact_change,
    "role_escalation": _webhook,
    "data_export": _webhook,
}


def _refusal(case: VerificationCase, actor: Any, now: Any) -> str:
    """Why this case may not authorise its action now, or ''."""
    if case.purpose != Purpose.SERVICE_DESK or case.action not in EXECUTORS:
        return f"{case.action} is not a service-desk action"
    if actor.pk != case.agent_id:
        return "only the agent who opened the case may act on it"
    if case.state != CaseState.VERIFIED or case.consumed_at is not None:
        return f"the case is {case.state}, not verified and unused"
    if case.usable_from and now < case.usable_from:
        return f"cooling-off: the action may run from {case.usable_from:%Y-%m-%d %H:%M} UTC"
    if case.verified_until is None or now > case.verified_until:
        return "the verification window has passed"
    return ""


def action_execute(
    *, case: VerificationCase, actor: Any, params: dict[str, Any] | None = None
) -> VerificationCase:
    """1. Lock the case and check it authorises this action now, once.
    2. Run the executor; mark the case executed and consumed.
    3. Tell the subject over an independent channel what was done, by whom, on which ticket.
    A refusal is audited as `blocked` after the lock is released, then raised."""
    with transaction.atomic():
        case = lock_case(case)
        now = timezone.now()
        reason = _refusal(case, actor, now)
        if not reason:
            return _execute(case, actor, params or {}, now)
    record(
        "action_blocked",
        outcome=Outcome.BLOCKED,
        actor=actor,
        subject=case.subject,
        tier=case.tier_level,
        channel=case.channel,
        action=case.action,
        target=case,
        data={"reason": reason},
    )
    raise (NotAllowed if actor.pk != case.agent_id else WrongState)(reason, code="action_refused")


def _execute(case: VerificationCase, actor: Any, params: dict[str, Any], now: Any) -> VerificationCase:
    subject = case.subject
    # Told at the addresses held before the action: a contact change must not
    # announce itself only to the new (perhaps the attacker's) address.
    email_before, phone_before = subject.email, subject.phone
    result = EXECUTORS[case.action](case, params)
    case.state, case.consumed_at, case.execution_result = CaseState.EXECUTED, now, result
    case.save(update_fields=["state", "consumed_at", "execution_result"])
    case_event("action_executed", case, actor=actor, data=result)
    what = case.action.replace("_", " ")
    by = f"by {case.agent.get_username()} on ticket {case.ticket or 'none'}"
    if email_before:
        notice_email(
            email_before,
            name=subject.get_full_name() or subject.get_username(),
            headline=f"{what.capitalize()} done on your account",
            message=f"{what.capitalize()} was carried out {by} after you were verified.",
        )
    sms_notice(phone_before, f"Vigil: {what} done {by}. Not you? Tell your security team.")
    return case


def action_webhook_deliver(*, case_id: int, attempt: int = 1) -> bool:
    """POST an executed action to the IdP automation; safe to run twice.

    1. Claim under the case lock: an executed webhook action not yet delivered and
       not held by a live worker (a lease in `execution_result`).
    2. POST the signed payload outside any transaction.
    3. Record the outcome on the case and the trail; raise DeliveryError to retry."""
    now = timezone.now()
    with transaction.atomic():
        case = lock_case(VerificationCase(pk=case_id))
        result = case.execution_result
        lease = result.get("claimed_until")
        if (
            case.state != CaseState.EXECUTED
            or result.get("delivery") not in {"queued", "failed", "sending"}
            or (lease and datetime.fromisoformat(lease) > now)
        ):
            return False
        lease_end = (now + DELIVERY_LEASE).isoformat()
        case.execution_result = {**result, "delivery": "sending", "claimed_until": lease_end}
        case.save(update_fields=["execution_result"])
    payload = {
        "case": case.pk,
        "action": case.action,
        "subject": case.subject.get_username(),
        "agent": case.agent.get_username(),
        "ticket": case.ticket,
        "verified_at": case.verified_at.isoformat() if case.verified_at else None,
        "executed_at": case.consumed_at.isoformat() if case.consumed_at else None,
    }
    try:
        status = webhook_post(
            url=settings.ACTION_WEBHOOK_URL, payload=payload, secret=settings.ACTION_WEBHOOK_SECRET
        )
    except DeliveryError as exc:
        failure = {"delivery": "failed", "error": str(exc)[:200], "attempt": attempt}
        _record_delivery(case, failure, Outcome.FAILURE)
        raise
    _record_delivery(case, {"delivery": "delivered", "status": status, "attempt": attempt}, Outcome.SUCCESS)
    return True


def _record_delivery(case: VerificationCase, outcome_data: dict[str, Any], outcome: str) -> None:
    with transaction.atomic():
        locked = lock_case(case)
        result = {key: value for key, value in locked.execution_result.items() if key != "claimed_until"}
        locked.execution_result = {**result, **outcome_data, "at": timezone.now().isoformat()}
        locked.save(update_fields=["execution_result"])
        case_event("action_delivery", locked, outcome=outcome, data=outcome_data)


def action_webhooks_sweep(now: datetime | None = None) -> int:
    """Beat: enqueue webhook actions that never left (broker away) or whose worker died."""
    now = now or timezone.now()
    candidates = VerificationCase.objects.filter(
        state=CaseState.EXECUTED,
        execution_result__delivery__in=["queued", "sending"],
        consumed_at__lte=now - timedelta(seconds=settings.VERIFICATION_REDISPATCH_AFTER_SECONDS),
    ).values_list("pk", "execution_result")
    from verification.tasks import action_webhook_deliver as task

    count = 0
    for case_id, result in candidates:
        lease = result.get("claimed_until")
        if lease is None or datetime.fromisoformat(lease) <= now:
            task.delay(case_id)
            count += 1
    return count
