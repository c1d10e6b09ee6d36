"""Thin Celery tasks: ids in, a service call, retries with backoff for transient
delivery faults. Each service claims its row first, so a task run twice (acks_late
redelivery, a sweeper racing a retry) does its work once."""

from typing import Any

from celery import shared_task

from audit.context import acting_as
from verification import actions, cases, challenges, notices
from verification.channels import DeliveryError

RETRY = {"max_retries": 5, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True}


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(DeliveryError,), **RETRY)
def challenge_dispatch(self: Any, challenge_id: int) -> bool:
    with acting_as("system"):
        return challenges.challenge_dispatch(challenge_id=challenge_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(DeliveryError,), **RETRY)
def notice_deliver(self: Any, notice_id: int) -> bool:
    with acting_as("system"):
        return notices.notice_deliver(notice_id=notice_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def notices_deliver(self: Any, notice_ids: list[int]) -> int:
    with acting_as("system"):
        return notices.notices_deliver(notice_ids=notice_ids)


@shared_task(bind=True, acks_late=True, ignore_result=True, autoretry_for=(DeliveryError,), **RETRY)
def action_webhook_deliver(self: Any, case_id: int) -> bool:
    with acting_as("system"):
        return actions.action_webhook_deliver(case_id=case_id, attempt=self.request.retries + 1)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def challenges_sweep(self: Any) -> dict[str, int]:
    with acting_as("system"):
        return challenges.challenges_sweep()


@shared_task(bind=True, acks_late=True, ignore_result=True)
def deliveries_sweep(self: Any) -> dict[str, int]:
    with acting_as("system"):
        return {**notices.notices_sweep(), "webhooks": actions.action_webhooks_sweep()}


@shared_task(bind=True, acks_late=True, ignore_result=True)
def cases_expire(self: Any) -> int:
    with acting_as("system"):
        return cases.cases_expire()
