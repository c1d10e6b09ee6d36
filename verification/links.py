"""Single-use links (password reset, enrolment, cancel a pending reset): only the
token's SHA-256 is stored; reset and enrolment links live at most 20 minutes."""

import secrets
from datetime import timedelta

from django.utils import timezone

from verification.errors import WrongState
from verification.models import OneTimeLink, VerificationCase

MAX_LINK_MINUTES = 20


def link_issue(*, case: VerificationCase, kind: str, minutes: int = MAX_LINK_MINUTES) -> str:
    """A fresh single-use link token for the subject; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    OneTimeLink.objects.create(
        kind=kind,
        case=case,
        user=case.subject,
        token_hash=OneTimeLink.hash_token(token),
        expires_at=timezone.now() + timedelta(minutes=min(minutes, MAX_LINK_MINUTES)),
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
