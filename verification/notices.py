"""Messages to people about their own cases: written to the Notice outbox in the
transaction that caused them, delivered by a worker after the commit, and re-sent
by the beat sweeper if the broker or the gateway was away."""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import Retry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from audit.models import Outcome
from audit.services import record
from verification.channels import DeliveryError, email_send, sms_send
from verification.links import LINK_PATHS, link_issue
from verification.models import Notice, OneTimeLink, VerificationCase

logger = logging.getLogger(__name__)

# Longer than EMAIL_TIMEOUT and the webhook timeout: a live worker keeps its claim.
DELIVERY_LEASE = timedelta(seconds=settings.VERIFICATION_DELIVERY_LEASE_SECONDS)
NOTICE_GIVE_UP_AFTER = timedelta(hours=24)


def enqueue_on_commit(task_name: str, argument: Any) -> None:
    """Hand `argument` (an id, or a list of ids) to a verification task once the
    transaction commits.

    The rows are already stored as queued, so a broker that is briefly away costs
    nothing but time: the sweeper enqueues them later and the request still succeeds.
    (DeliveryError and Retry reach here only when tasks run eagerly, as in tests.)"""

    def send() -> None:
        from verification import tasks

        try:
            getattr(tasks, task_name).delay(argument)
        except (OperationalError, OSError, DeliveryError, Retry):
            logger.warning("%s(%s) left for the sweeper", task_name, argument, exc_info=True)

    transaction.on_commit(send)


def _queue(**fields: Any) -> None:
    notice = Notice.objects.create(**fields)
    enqueue_on_commit("notice_deliver", notice.pk)


def notices_to_many(messages: Iterable[tuple[Any, str, str]]) -> None:
    """Email each (user, headline, message) once the current transaction commits:
    one insert and one task for all of them."""
    notices = Notice.objects.bulk_create(
        Notice(
            medium=Notice.Medium.EMAIL,
            to=user.email,
            name=user.get_full_name() or user.get_username(),
            headline=headline[:200],
            message=message,
        )
        for user, headline, message in messages
        if user.email
    )
    if notices:
        enqueue_on_commit("notices_deliver", [notice.pk for notice in notices])


def notice_to(
    user: Any,
    *,
    headline: str,
    message: str,
    link: str = "",
    link_label: str = "",
    case: VerificationCase | None = None,
    link_kind: str = "",
    link_expires_at: datetime | None = None,
) -> None:
    """Email `user` once the current transaction commits. With `link_kind`, the
    email carries a one-time link for `case`, made when it is sent."""
    if user.email:
        notice_email(
            user.email,
            name=user.get_full_name() or user.get_username(),
            headline=headline,
            message=message,
            link=link,
            link_label=link_label,
            case=case,
            link_kind=link_kind,
            link_expires_at=link_expires_at,
        )


def notice_email(
    address: str,
    *,
    name: str,
    headline: str,
    message: str,
    link: str = "",
    link_label: str = "",
    case: VerificationCase | None = None,
    link_kind: str = "",
    link_expires_at: datetime | None = None,
) -> None:
    """Email an address (an email factor's own, say) once the current transaction commits."""
    _queue(
        medium=Notice.Medium.EMAIL,
        to=address,
        name=name,
        headline=headline[:200],
        message=message,
        link=link,
        link_label=link_label,
        case=case,
        link_kind=link_kind,
        link_expires_at=link_expires_at,
    )


def sms_notice(
    number: str,
    body: str,
    *,
    case: VerificationCase | None = None,
    link_kind: str = "",
    link_expires_at: datetime | None = None,
) -> None:
    """Text `number` once the current transaction commits (a one-time link is appended)."""
    if number:
        _queue(
            medium=Notice.Medium.SMS,
            to=number,
            headline=body[:200],
            message=body,
            case=case,
            link_kind=link_kind,
            link_expires_at=link_expires_at,
        )


def notice_security(*, headline: str, message: str) -> None:
    admins = get_user_model().objects.filter(groups__name=settings.SECURITY_ADMIN_GROUP, is_active=True)
    for admin in admins.exclude(email=""):
        notice_to(
            admin,
            headline=headline,
            message=message,
            link=f"{settings.PORTAL_URL}/admin/",
            link_label="Open Vigil",
        )


def notice_deliver(*, notice_id: int) -> bool:
    """1. Claim the queued notice with a conditional update (a lease); a notice
       already sent or being sent by a live worker is left alone.
    2. Make its one-time link now, if it carries one.
    3. Send outside any transaction; mark it sent, or record the error and raise
       DeliveryError so the task retries."""
    now = timezone.now()
    claimed = Notice.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now), pk=notice_id, state=Notice.State.QUEUED
    ).update(claimed_until=now + DELIVERY_LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return False
    notice = Notice.objects.select_related("case").get(pk=notice_id)
    link = notice.link
    if notice.link_kind:
        assert notice.case is not None  # one-time links always belong to a case
        if notice.link_expires_at is not None and notice.link_expires_at <= now:
            Notice.objects.filter(pk=notice_id).update(
                state=Notice.State.FAILED, claimed_until=None, error="the link it carried has expired"
            )
            return False
        token = link_issue(case=notice.case, kind=notice.link_kind, expires_at=notice.link_expires_at)
        link = f"{settings.PORTAL_URL}/verify/{LINK_PATHS[OneTimeLink.Kind(notice.link_kind)]}/{token}/"
    try:
        if notice.medium == Notice.Medium.EMAIL:
            email_send(
                to=notice.to,
                template="notice",
                context={
                    "name": notice.name,
                    "headline": notice.headline,
                    "message": notice.message,
                    "link": link,
                    "link_label": notice.link_label,
                    "report_url": f"{settings.PORTAL_URL}/me/",
                },
            )
        else:
            sms_send(to=notice.to, body=f"{notice.message} {link}".strip())
    except DeliveryError as error:
        Notice.objects.filter(pk=notice_id, state=Notice.State.QUEUED).update(
            error=str(error)[:200], claimed_until=None
        )
        raise
    Notice.objects.filter(pk=notice_id, state=Notice.State.QUEUED).update(
        state=Notice.State.SENT, sent_at=timezone.now(), claimed_until=None, error=""
    )
    return True


def notices_deliver(*, notice_ids: list[int]) -> int:
    """Deliver notices written together, one after another. One that fails stays
    queued with its error, for the sweeper to send again; the others still go."""
    sent = 0
    for notice_id in notice_ids:
        try:
            sent += notice_deliver(notice_id=notice_id)
        except DeliveryError:
            logger.warning("notice %s left for the sweeper", notice_id, exc_info=True)
    return sent


def notices_sweep(now: datetime | None = None) -> dict[str, int]:
    """Beat: re-send notices that stayed queued; give up (audited) after a day."""
    now = now or timezone.now()
    queued = Notice.objects.filter(state=Notice.State.QUEUED)
    stale = list(queued.filter(created_at__lte=now - NOTICE_GIVE_UP_AFTER).select_related("case__subject"))
    for notice in stale:
        if Notice.objects.filter(pk=notice.pk, state=Notice.State.QUEUED).update(state=Notice.State.FAILED):
            record(
                "notice_undelivered",
                outcome=Outcome.FAILURE,
                actor="system",
                subject=notice.case.subject if notice.case else None,
                target=notice.case,
                data={"notice": notice.pk, "medium": notice.medium, "error": notice.error},
            )
    due = list(
        queued.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
            created_at__lte=now - timedelta(seconds=settings.VERIFICATION_REDISPATCH_AFTER_SECONDS),
        ).values_list("pk", flat=True)
    )
    from verification.tasks import notice_deliver as task

    for notice_id in due:
        task.delay(notice_id)
    return {"given_up": len(stale), "resent": len(due)}
