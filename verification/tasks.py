"""Thin Celery tasks: ids in, a service call, retries for transient delivery faults."""

from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit.context import acting_as
from audit.models import Outcome
from verification import cases, challenges
from verification.channels import DeliveryError, sms_send, webhook_post
from verification.models import VerificationCase

RETRY = {"max_retries": 5, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True}


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(DeliveryError,), **RETRY)
def challenge_dispatch(self: Any, challenge_id: int) -> bool:
    with acting_as("system"):
        return challenges.challenge_dispatch(challenge_id=challenge_id)


@shared_task(acks_late=True, ignore_result=True)
def challenges_sweep() -> dict[str, int]:
    with acting_as("system"):
        return challenges.challenges_sweep()


@shared_task(acks_late=True, ignore_result=True)
def cases_expire() -> int:
    with acting_as("system"):
        return cases.cases_expire()


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(OSError,), **RETRY)
def notice_send(self: Any, to: str, context: dict[str, Any]) -> None:
    subject = render_to_string("verification/email/notice.subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject, render_to_string("verification/email/notice.txt", context), settings.DEFAULT_FROM_EMAIL, [to]
    )
    message.attach_alternative(render_to_string("verification/email/notice.html", context), "text/html")
    message.send()


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(DeliveryError,), **RETRY)
def sms_notice_send(self: Any, to: str, body: str) -> None:
    sms_send(to=to, body=body)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def action_webhook_deliver(self: Any, case_id: int) -> None:
    """POST the signed action to the IdP; record each outcome on the case and the trail."""
    case = VerificationCase.objects.select_related("subject", "agent").get(pk=case_id)
    payload = {
        "case": case.pk,
        "action": case.action,
        "subject": case.subject.get_username(),
        "agent": case.agent.get_username(),
        "ticket": case.ticket,
        "verified_at": case.verified_at.isoformat() if case.verified_at else None,
    }
    with acting_as("system"):
        try:
            status = webhook_post(
                url=settings.ACTION_WEBHOOK_URL, payload=payload, secret=settings.ACTION_WEBHOOK_SECRET
            )
        except DeliveryError as exc:
            _record_delivery(
                case,
                {"delivery": "failed", "error": str(exc), "attempt": self.request.retries + 1},
                Outcome.FAILURE,
            )
            raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
        _record_delivery(case, {"delivery": "delivered", "status": status}, Outcome.SUCCESS)


def _record_delivery(case: VerificationCase, result: dict[str, Any], outcome: str) -> None:
    with transaction.atomic():
        locked = VerificationCase.objects.select_for_update().get(pk=case.pk)
        locked.execution_result = {**locked.execution_result, **result, "at": timezone.now().isoformat()}
        locked.save(update_fields=["execution_result"])
        cases.case_event("action_delivery", locked, outcome=outcome, data=result)
