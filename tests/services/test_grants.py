"""Grants end on time on the real stack: an ETA task on Redis deprovisions in
PostgreSQL, the sweeper catches what a stopped worker missed, and no permission
check passes after a deadline, whatever the workers are doing."""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from audit.models import AuditEvent
from policies.access import access_request_decide, access_request_submit
from policies.grants import grant_provision
from policies.models import AccessRequest, Grant, RequestState
from policies.tasks import grants_sweep
from portal.celery import app
from portal.models import User
from tests.factories import UserFactory, prod_db_entitlement
from tests.otp import current_token
from verification.challenges import challenge_answer, challenge_create
from verification.factors import factor_enroll

# Business hours on a weekday, so the default policy's off-hours rule stays quiet.
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PERMISSION = "policies.view_riskrule"
T = TypeVar("T")


def until(predicate: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def worker():
    """A worker thread on the real Redis broker; leaving the block is a warm shutdown."""
    return start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10)


@pytest.fixture
def clock(transactional_db, default_policy):
    """Ticking time for the test and its worker threads alike. Queued messages of
    earlier tests would name grants that no longer exist, so the queue starts empty."""
    app.control.purge()
    traveller = time_machine.travel(TUESDAY_NOON, tick=True)
    coordinates = traveller.start()
    yield coordinates
    traveller.stop()


def granted(approver: User) -> Grant:
    """The public flow: the on-call engineer asks for a one-minute grant for
    themselves, passes the step-up with their authenticator, an approver approves."""
    entitlement = prod_db_entitlement()
    oncall = UserFactory(username="oncall")
    with time_machine.travel(timezone.now() - timedelta(days=30), tick=False):
        device = factor_enroll(user=oncall, method="totp").device
    request = access_request_submit(
        requester=oncall,
        beneficiary=oncall,
        entitlement=entitlement,
        justification="incident INC-9",
        duration_minutes=1,
        ticket="INC-9",
    )
    assert request.verification is not None
    challenge = challenge_create(case=request.verification, method="totp", actor=oncall)
    challenge_answer(challenge=challenge, code=current_token(device), actor=oncall)
    assert AccessRequest.objects.get(pk=request.pk).state == RequestState.PENDING_APPROVAL
    access_request_decide(request=request, approver=approver, approve=True, comment="INC-9 is real")
    grant = Grant.objects.select_related("entitlement__group").get(request=request)
    assert grant.expires_at - grant.starts_at == timedelta(minutes=1)
    return grant


def authorised(grant: Grant) -> bool:
    """A permission check as a new request would make it: a user fresh from the database."""
    return User.objects.get(pk=grant.user_id).has_perm(PERMISSION)


def member(grant: Grant) -> bool:
    return User.objects.filter(pk=grant.user_id, groups=grant.entitlement.group).exists()


def sleep_until(moment: datetime) -> None:
    time.sleep(max((moment - timezone.now()).total_seconds(), 0))


def test_eta_task_on_redis_expires_the_grant_and_removes_the_membership(clock, approver, request):
    grant = granted(approver)
    # Skip most of the minute; the worker starts now, with the deadline 4 s away.
    clock.shift(grant.expires_at - timedelta(seconds=4) - timezone.now())
    request.getfixturevalue("celery_worker")
    until(lambda: Grant.objects.get(pk=grant.pk).provisioning == Grant.Provisioning.PROVISIONED)
    assert member(grant)
    assert authorised(grant)
    assert timezone.now() < grant.expires_at

    sleep_until(grant.expires_at)
    assert not authorised(grant)
    ended = until(lambda: Grant.objects.filter(pk=grant.pk).exclude(ended_at=None).first(), timeout=5)
    assert not member(grant)
    assert ended.provisioning == Grant.Provisioning.DEPROVISIONED
    assert timedelta(0) <= ended.ended_at - grant.expires_at < timedelta(seconds=3)
    assert AccessRequest.objects.get(pk=grant.request_id).state == RequestState.EXPIRED
    expired = AuditEvent.objects.get(verb="grant_expired", target_id=str(grant.pk))
    assert expired.actor == "system" and expired.data["still_covered_by"] is None


def queued_eta(task_name: str) -> datetime:
    """The ETA of the one message for `task_name` waiting in Redis."""
    with app.connection_for_write() as connection:
        bodies = connection.default_channel.client.lrange("celery", 0, -1)
    [eta] = [m["headers"]["eta"] for m in map(json.loads, bodies) if m["headers"]["task"] == task_name]
    return datetime.fromisoformat(eta)


def test_a_deadline_beyond_the_visibility_timeout_is_reached_in_hops(clock, approver, settings, request):
    """Redis would hand a message held past its visibility timeout to a second worker,
    so the expiry is queued a hop ahead and queues itself again until the deadline."""
    settings.CELERY_ETA_HOP_SECONDS = 20
    grant = granted(approver)  # one minute long
    first_hop = queued_eta("policies.tasks.grant_expire")
    assert abs((first_hop - (grant.starts_at + timedelta(seconds=20))).total_seconds()) < 2

    clock.shift(grant.expires_at - timedelta(seconds=4) - timezone.now())
    request.getfixturevalue("celery_worker")  # the hop is due: it queues the deadline itself
    ended = until(lambda: Grant.objects.filter(pk=grant.pk).exclude(ended_at=None).first(), timeout=8)
    assert timedelta(0) <= ended.ended_at - grant.expires_at < timedelta(seconds=3)
    assert AuditEvent.objects.filter(verb="grant_expired", target_id=str(grant.pk)).count() == 1


def test_sweeper_catches_a_grant_whose_worker_was_down_over_its_deadline(clock, approver):
    grant = granted(approver)
    clock.shift(grant.expires_at - timedelta(seconds=3) - timezone.now())
    with worker():
        until(lambda: Grant.objects.get(pk=grant.pk).provisioning == Grant.Provisioning.PROVISIONED)
    # The worker is gone and its scheduled expiry with it, as when a worker is
    # killed: the message it held is not redelivered before the visibility timeout.
    assert app.control.purge() == 1
    assert authorised(grant)

    sleep_until(grant.expires_at + timedelta(seconds=1))
    assert member(grant)
    assert Grant.objects.get(pk=grant.pk).ended_at is None
    assert not authorised(grant)

    with worker():
        grants_sweep.delay()
        ended = until(lambda: Grant.objects.filter(pk=grant.pk).exclude(ended_at=None).first())
    assert not member(grant)
    assert ended.provisioning == Grant.Provisioning.DEPROVISIONED
    assert AccessRequest.objects.get(pk=grant.request_id).state == RequestState.EXPIRED
    expired = AuditEvent.objects.get(verb="grant_expired", target_id=str(grant.pk))
    assert expired.data["lag_seconds"] >= 1


def test_no_permission_check_passes_from_the_deadline_on(clock, approver):
    """No worker runs at all: membership stays, authorisation ends exactly at expires_at."""
    grant = granted(approver)
    assert grant_provision(grant_id=grant.pk)
    with time_machine.travel(grant.expires_at - timedelta(microseconds=1), tick=False):
        assert authorised(grant)
    with time_machine.travel(grant.expires_at, tick=False):
        assert not authorised(grant)

    clock.shift(grant.expires_at - timedelta(seconds=1) - timezone.now())
    assert authorised(grant)
    checks = 0
    sleep_until(grant.expires_at)
    while timezone.now() < grant.expires_at + timedelta(seconds=2):
        assert not authorised(grant)
        checks += 1
    assert checks > 10
    assert member(grant)
    assert Grant.objects.active().filter(pk=grant.pk).count() == 0
