from datetime import datetime, timedelta

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from audit.context import acting_as
from policies import access, grants
from policies.models import Grant


def schedule(task: Task, grant_id: int, when: datetime) -> None:
    """Queue `task` for `when`, or for a hop towards it: Redis hands a task held past
    its visibility timeout to another worker, so a far deadline is reached in hops.
    (Tasks run eagerly, as in unit tests, ignore ETAs: there they never hop.)"""
    hop = timezone.now() + timedelta(seconds=settings.CELERY_ETA_HOP_SECONDS)
    task.apply_async((grant_id,), eta=min(when, hop))


@shared_task(bind=True, acks_late=True, ignore_result=True)
def grant_provision(self, grant_id: int) -> bool:  # type: ignore[no-untyped-def]
    grant = Grant.objects.filter(pk=grant_id).first()
    if grant is not None and grant.state() == "scheduled" and not self.request.is_eager:
        schedule(grant_provision, grant_id, grant.starts_at)  # a hop short of the start
        return False
    with acting_as("system"):
        return grants.grant_provision(grant_id=grant_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def grant_expire(self, grant_id: int) -> bool:  # type: ignore[no-untyped-def]
    """Queued for expires_at (in hops, see `schedule`). Grants sharing a deadline end
    together: the first task to run ends every group grant due, in batches; the rest
    find theirs done. A deprovision that fails is retried with backoff, and the beat
    sweeper catches anything this misses."""
    grant = Grant.objects.filter(pk=grant_id, ended_at=None).first()
    if grant is None:
        return False  # ended with the others of its deadline
    if grant.state() in {"active", "scheduled"} and not self.request.is_eager:
        schedule(grant_expire, grant_id, grant.expires_at)  # a hop short of the end
        return False
    with acting_as("system"):
        while grants.grants_end_due():
            pass
        ended = grants.grant_end(grant_id=grant_id)
    grant = Grant.objects.filter(pk=grant_id, ended_at=None).first()
    if grant is not None and grant.deprovision_attempts:
        raise self.retry(countdown=min(2**grant.deprovision_attempts, 300))
    return ended


@shared_task(acks_late=True, ignore_result=True)
def grants_sweep() -> dict[str, int]:
    with acting_as("system"):
        return grants.grants_sweep()


@shared_task(acks_late=True, ignore_result=True)
def requests_expire() -> int:
    with acting_as("system"):
        return access.requests_expire()
