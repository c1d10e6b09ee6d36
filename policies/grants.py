"""Provisioning, expiry and revocation of grants. Idempotent: a task run twice,
or a sweeper racing the ETA task, changes nothing the second time."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from policies.models import AccessRequest, Grant, RequestState
from policies.provisioners import ManualStep, deprovision, provision
from verification.channels import DeliveryError
from verification.errors import NotAllowed, WrongState
from verification.notices import notice_to

GIVE_UP_AFTER = 5  # failed deprovisions before the grant is shown as failing (it keeps being retried)


def grant_event(
    verb: str,
    grant: Grant,
    *,
    actor: Any = "system",
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
) -> None:
    record(
        verb,
        outcome=outcome,
        actor=actor,
        subject=grant.user,
        action="access_grant",
        target=grant,
        data={"entitlement": grant.entitlement.name, **(data or {})},
    )


def _lock(grant_id: int) -> Grant:
    return (
        Grant.objects.select_for_update(of=("self",))
        .select_related("user", "entitlement__group", "request")
        .get(pk=grant_id)
    )


def _covered_elsewhere(grant: Grant, at: datetime) -> Grant | None:
    """Another grant of the same entitlement that still covers the user: access stays."""
    return (
        Grant.objects.active(at)
        .filter(user=grant.user, entitlement=grant.entitlement)
        .exclude(pk=grant.pk)
        .first()
    )


def grant_provision(*, grant_id: int) -> bool:
    """Give the access once the grant has started and while it still confers it."""
    with transaction.atomic():
        grant = _lock(grant_id)
        now = timezone.now()
        if grant.provisioning != Grant.Provisioning.PENDING or grant.state(now) != "active":
            return False
        try:
            provision(grant)
        except ManualStep as step:
            grant.provisioning = Grant.Provisioning.MANUAL
            grant.provisioning_error = str(step)
        except DeliveryError as exc:
            grant.provisioning_error = str(exc)[:300]
            grant.save(update_fields=["provisioning_error"])
            grant_event("grant_provision_failed", grant, outcome=Outcome.FAILURE, data={"error": str(exc)})
            return False
        else:
            grant.provisioning, grant.provisioning_error = Grant.Provisioning.PROVISIONED, ""
        grant.save(update_fields=["provisioning", "provisioning_error"])
        AccessRequest.objects.filter(pk=grant.request_id, state=RequestState.APPROVED).update(
            state=RequestState.ACTIVE
        )
        grant_event("grant_provisioned", grant, data={"provisioning": grant.provisioning})
        return True


def grant_end(*, grant_id: int) -> bool:
    """Take the access away once the grant has expired or been revoked.
    Access another active grant still covers is left in place."""
    with transaction.atomic():
        grant = _lock(grant_id)
        now = timezone.now()
        state = grant.state(now)
        if state in {"active", "scheduled"} or grant.ended_at is not None:
            return False
        verb = "grant_revoked_ended" if state == "revoked" else "grant_expired"
        cover = _covered_elsewhere(grant, now)
        if cover is None and grant.provisioning in {
            Grant.Provisioning.PROVISIONED,
            Grant.Provisioning.FAILED,
            Grant.Provisioning.MANUAL,
        }:
            try:
                deprovision(grant)
            except ManualStep as step:
                grant.provisioning, grant.provisioning_error = Grant.Provisioning.MANUAL, str(step)
            except DeliveryError as exc:
                grant.deprovision_attempts += 1
                grant.provisioning_error = str(exc)[:300]
                if grant.deprovision_attempts >= GIVE_UP_AFTER:
                    grant.provisioning = Grant.Provisioning.FAILED
                grant.save(update_fields=["deprovision_attempts", "provisioning_error", "provisioning"])
                grant_event(
                    "grant_deprovision_failed",
                    grant,
                    outcome=Outcome.FAILURE,
                    data={"error": str(exc), "attempts": grant.deprovision_attempts},
                )
                return False
            else:
                grant.provisioning, grant.provisioning_error = Grant.Provisioning.DEPROVISIONED, ""
        elif grant.provisioning == Grant.Provisioning.PENDING:
            grant.provisioning = Grant.Provisioning.DEPROVISIONED
        grant.ended_at = now
        grant.save(update_fields=["provisioning", "provisioning_error", "ended_at"])
        final = RequestState.REVOKED if state == "revoked" else RequestState.EXPIRED
        AccessRequest.objects.filter(
            pk=grant.request_id, state__in=[RequestState.ACTIVE, RequestState.APPROVED]
        ).update(state=final)
        grant_event(
            verb,
            grant,
            data={
                "lag_seconds": round((now - grant.ends_at()).total_seconds(), 3),
                "still_covered_by": cover.pk if cover else None,
                "provisioning": grant.provisioning,
            },
        )
        if state == "expired":
            for person in {grant.user, grant.request.requester}:
                notice_to(
                    person,
                    headline=f"Access ended: {grant.entitlement.name}",
                    message=f"{grant.entitlement.name} for {grant.user.get_username()} expired.",
                )
        return True


@transaction.atomic
def grant_revoke(*, grant: Grant, actor: Any, reason: str) -> Grant:
    """Early revoke by an approver or a security admin: it confers nothing from now on."""
    grant = _lock(grant.pk)
    allowed = (
        actor.pk == grant.entitlement.owner_id
        or actor.groups.filter(name__in=[settings.APPROVER_GROUP, settings.SECURITY_ADMIN_GROUP]).exists()
    )
    if not allowed:
        raise NotAllowed("only approvers and security admins revoke grants")
    now = timezone.now()
    if grant.state(now) not in {"active", "scheduled"}:
        raise WrongState(f"the grant is already {grant.state(now)}")
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, actor, reason[:300]
    grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    grant_event("grant_revoked", grant, actor=actor, data={"reason": reason})
    for person in {grant.user, grant.request.requester}:
        notice_to(
            person,
            headline=f"Access revoked: {grant.entitlement.name}",
            message=f"{actor.get_username()} revoked {grant.entitlement.name} for "
            f"{grant.user.get_username()}: {reason}",
        )
    from policies.tasks import grant_expire

    transaction.on_commit(lambda: grant_expire.delay(grant.pk))
    return grant


def grant_retry_deprovision(*, grant: Grant, actor: Any) -> bool:
    with transaction.atomic():
        locked = _lock(grant.pk)
        locked.deprovision_attempts = 0
        locked.save(update_fields=["deprovision_attempts"])
        grant_event("grant_deprovision_retried", locked, actor=actor, outcome=Outcome.INFO)
    return grant_end(grant_id=grant.pk)


@transaction.atomic
def grant_manual_complete(*, grant: Grant, actor: Any) -> Grant:
    """An operator records that they did the manual step (grant or removal)."""
    grant = _lock(grant.pk)
    if grant.provisioning != Grant.Provisioning.MANUAL:
        raise WrongState("this grant waits for no manual step")
    done = Grant.Provisioning.DEPROVISIONED if grant.ended_at else Grant.Provisioning.PROVISIONED
    grant.provisioning, grant.provisioning_error = done, ""
    grant.save(update_fields=["provisioning", "provisioning_error"])
    grant_event("grant_manual_step_done", grant, actor=actor, data={"now": done})
    return grant


def grants_sweep(now: datetime | None = None) -> dict[str, int]:
    """Beat: whatever the ETA tasks missed (a worker down over a deadline)."""
    now = now or timezone.now()
    ended = sum(
        grant_end(grant_id=pk)
        for pk in Grant.objects.filter(ended_at=None)
        .exclude(expires_at__gt=now, revoked_at=None)
        .filter(expires_at__lte=now)
        .values_list("pk", flat=True)
    )
    ended += sum(
        grant_end(grant_id=pk)
        for pk in Grant.objects.filter(ended_at=None, revoked_at__lte=now).values_list("pk", flat=True)
    )
    started = sum(
        grant_provision(grant_id=pk)
        for pk in Grant.objects.active(now)
        .filter(provisioning=Grant.Provisioning.PENDING)
        .values_list("pk", flat=True)
    )
    soon = now + timedelta(minutes=15)
    noticed = 0
    for grant in (
        Grant.objects.active(now)
        .filter(expires_at__lte=soon, expiry_notice_sent_at=None)
        .select_related("user", "entitlement", "request__requester")
    ):
        if Grant.objects.filter(pk=grant.pk, expiry_notice_sent_at=None).update(expiry_notice_sent_at=now):
            for person in {grant.user, grant.request.requester}:
                notice_to(
                    person,
                    headline=f"Access ends soon: {grant.entitlement.name}",
                    message=f"{grant.entitlement.name} for {grant.user.get_username()} ends at "
                    f"{grant.expires_at:%H:%M} UTC. Ask for an extension if it is still needed.",
                )
            noticed += 1
    return {"ended": ended, "provisioned": started, "expiry_notices": noticed}
