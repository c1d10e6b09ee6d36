"""Single-use links (password reset, enrolment, cancel a pending reset): only the
token's SHA-256 is stored; reset and enrolment links live at most 20 minutes."""

import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from verification.errors import WrongState
from verification.models import OneTimeLink, VerificationCase

MAX_LINK_MINUTES = 20
LINK_PATHS = {
    OneTimeLink.Kind.PASSWORD_RESET: "reset",
    OneTimeLink.Kind.ENROLMENT: "enrol",
    OneTimeLink.Kind.CANCEL: "cancel",
}


def link_issue(*, case: VerificationCase, kind: str, expires_at: datetime | None = None) -> str:
    """A fresh single-use link token for the case's subject; only its hash is stored.

    Reset and enrolment links live at most 20 minutes whatever `expires_at` says,
    and a new one retires the subject's earlier unused ones of the same kind. A
    cancel link lives until `expires_at` (the end of the cooling-off), and several
    may be live at once: every old factor gets its own."""
    now = timezone.now()
    latest = now + timedelta(minutes=MAX_LINK_MINUTES)
    if kind == OneTimeLink.Kind.CANCEL:
        if expires_at is None:
            raise ValueError("a cancel link needs the end of the cooling-off")
    else:
        expires_at = min(expires_at or latest, latest)
        OneTimeLink.objects.filter(
            user_id=case.subject_id, kind=kind, used_at=None, expires_at__gt=now
        ).update(expires_at=now)
    token = secrets.token_urlsafe(32)
    OneTimeLink.objects.create(
        kind=kind,
        case=case,
        user_id=case.subject_id,
        token_hash=OneTimeLink.hash_token(token),
        expires_at=expires_at,
    )
    return token


def link_peek(*, token: str, kind: str) -> OneTimeLink | None:
    """The live link for `token`, without using it (to show its page)."""
    return (
        OneTimeLink.objects.select_related("case", "user")
        .filter(
            token_hash=OneTimeLink.hash_token(token), kind=kind, used_at=None, expires_at__gt=timezone.now()
        )
        .first()
    )


def link_claim(*, token: str, kind: str) -> OneTimeLink:
    """Use a one-time link once: unknown, used or expired links are refused alike."""
    now = timezone.now()
    claimed = OneTimeLink.objects.filter(
        token_hash=OneTimeLink.hash_token(token), kind=kind, used_at=None, expires_at__gt=now
    ).update(used_at=now)
    if not claimed:
        raise WrongState("this link is invalid, used or expired", code="link_invalid")
    return OneTimeLink.objects.select_related("case", "user").get(token_hash=OneTimeLink.hash_token(token))
