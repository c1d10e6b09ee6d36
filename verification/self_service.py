"""What a verified person does with the link they were sent: choose a password,
enrol an authenticator, or cancel a pending reset. Each link works once."""

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import Outcome
from verification.cases import case_event
from verification.errors import BadRequest
from verification.links import link_claim, link_peek
from verification.models import AuthenticatorDevice, OneTimeLink


@transaction.atomic
def password_reset_complete(*, token: str, password: str, password_again: str) -> Any:
    link = link_peek(token=token, kind=OneTimeLink.Kind.PASSWORD_RESET)
    if link is None:
        raise BadRequest("this link is invalid, used or expired", code="link_invalid")
    if password != password_again:
        raise BadRequest("the two passwords differ", code="password_mismatch")
    try:
        validate_password(password, user=link.user)
    except ValidationError as exc:
        raise BadRequest(" ".join(exc.messages), code="weak_password") from exc
    link = link_claim(token=token, kind=OneTimeLink.Kind.PASSWORD_RESET)
    link.user.set_password(password)
    link.user.save(update_fields=["password"])
    case_event("password_reset_completed", link.case, actor=link.user)
    return link.user


def enrolment_device(*, token: str) -> AuthenticatorDevice | None:
    """The unconfirmed authenticator this enrolment link is setting up (made on first view)."""
    link = link_peek(token=token, kind=OneTimeLink.Kind.ENROLMENT)
    if link is None:
        return None
    name = f"Authenticator (case {link.case_id})"
    device, _ = AuthenticatorDevice.objects.get_or_create(user=link.user, name=name, confirmed=False)
    return device


@transaction.atomic
def enrolment_complete(*, token: str, code: str) -> AuthenticatorDevice:
    device = enrolment_device(token=token)
    if device is None:
        raise BadRequest("this link is invalid, used or expired", code="link_invalid")
    if not device.verify_token(code.strip()):
        raise BadRequest("that code does not match the authenticator; try the current one", code="bad_code")
    link = link_claim(token=token, kind=OneTimeLink.Kind.ENROLMENT)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    case_event(
        "factor_enrolled",
        link.case,
        actor=link.user,
        outcome=Outcome.SUCCESS,
        data={"method": "totp", "device": device.persistent_id, "via": "enrolment link"},
    )
    return device
