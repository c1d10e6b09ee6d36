from celery import shared_task

from audit.context import acting_as
from policies import access, grants
from policies.models import Grant


@shared_task(acks_late=True, ignore_result=True)
def grant_provision(grant_id: int) -> bool:
    with acting_as("system"):
        return grants.grant_provision(grant_id=grant_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def grant_expire(self, grant_id: int) -> bool:  # type: ignore[no-untyped-def]
    """Scheduled at expires_at. Grants sharing a deadline end together: the first task
    to run ends every group grant due, in batches; the rest find theirs done. A
    deprovision that fails is retried with backoff, and the beat sweeper catches
    anything this misses."""
    if not Grant.objects.filter(pk=grant_id, ended_at=None).exists():
        return False  # ended with the others of its deadline
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
