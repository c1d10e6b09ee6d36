"""Provisioning, expiry and revocation of grants. Idempotent: a task run twice,
or a sweeper racing the ETA task, changes nothing the second time."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Outcome
from audit.services import Entry, record_many
from policies.models import AccessRequest, Grant, Provisioner, RequestState
from policies.provisioners import ManualStep, deprovision, provision
from verification.channels import DeliveryError
from verification.errors import NotAllowed, WrongState
from verification.notices import notice_to, notices_to_many

GIVE_UP_AFTER = 5  # failed deprovisions before the grant is shown as failing (it keeps being retried)
END_BATCH = 500  # grants ended in one transaction: one statement a group, one lock of the audit chain


def grant_entry(
    verb: str,
    grant: Grant,
    *,
    actor: Any = "system",
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
) -> Entry:
    return Entry(
        verb,
        outcome=outcome,
        actor=actor,
        subject=grant.user,
        action="access_grant",
        target=grant,
        data={"entitlement": grant.entitlement.name, **(data or {})},
    )


def grant_event(verb: str, grant: Grant, **kwargs: Any) -> None:
    record_many([grant_entry(verb, grant, **kwargs)])


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
        _close_requests([grant], now)
        notices_to_many(_ended_messages([grant], now))
        record_many([_ended_entry(grant, now, cover.pk if cover else None)])
        return True


def _close_requests(grants: list[Grant], now: datetime) -> None:
    """The request of an ended grant ends with it: revoked or expired."""
    for final, state in ((RequestState.REVOKED, "revoked"), (RequestState.EXPIRED, "expired")):
        AccessRequest.objects.filter(
            pk__in=[g.request_id for g in grants if g.state(now) == state],
            state__in=[RequestState.ACTIVE, RequestState.APPROVED],
        ).update(state=final)


def _ended_entry(grant: Grant, now: datetime, still_covered_by: int | None) -> Entry:
    return grant_entry(
        "grant_revoked_ended" if grant.state(now) == "revoked" else "grant_expired",
        grant,
        data={
            "lag_seconds": round((now - grant.ends_at()).total_seconds(), 3),
            "still_covered_by": still_covered_by,
            "provisioning": grant.provisioning,
        },
    )


def _ended_messages(grants: list[Grant], now: datetime) -> list[tuple[Any, str, str]]:
    """Beneficiary and requester hear of an expiry (a revocation was told when it was
    made): one message a person, listing every grant of theirs that ended together."""
    ended: defaultdict[Any, list[Grant]] = defaultdict(list)
    for grant in grants:
        if grant.state(now) == "expired":
            for person in {grant.user, grant.request.requester}:
                ended[person].append(grant)
    messages = []
    for person, theirs in ended.items():
        lines = [f"{g.entitlement.name} for {g.user.get_username()} expired." for g in theirs]
        headline = (
            f"Access ended: {theirs[0].entitlement.name}"
            if len(theirs) == 1
            else f"Access ended: {len(theirs)} grants"
        )
        messages.append((person, headline, "\n".join(lines)))
    return messages


def grants_end_due(*, limit: int = END_BATCH) -> int:
    """End up to `limit` grants past their end whose access is a Django group, together:
    memberships removed with one statement a group, grants and requests closed,
    audit rows appended under one lock of the chain, notices queued in one insert.
    Concurrent callers take disjoint rows (SKIP LOCKED); grants provisioned elsewhere
    (webhook, operator) are left to grant_end, one call each. Returns how many ended."""
    with transaction.atomic():
        now = timezone.now()
        due = list(
            Grant.objects.filter(ended_at=None, entitlement__provisioner=Provisioner.DJANGO_GROUP)
            .filter(Q(expires_at__lte=now) | Q(revoked_at__lte=now))
            .select_related("user", "entitlement", "request__requester")
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("pk")[:limit]
        )
        if not due:
            return 0
        covers = {
            (user_id, entitlement_id): pk
            for user_id, entitlement_id, pk in Grant.objects.active(now)
            .filter(user__in={g.user_id for g in due}, entitlement__in={g.entitlement_id for g in due})
            .values_list("user_id", "entitlement_id", "pk")
        }
        cover_of = {g.pk: covers.get((g.user_id, g.entitlement_id)) for g in due}
        removals: defaultdict[int, set[int]] = defaultdict(set)
        for grant in due:
            if grant.provisioning == Grant.Provisioning.PENDING:
                grant.provisioning = Grant.Provisioning.DEPROVISIONED
            elif cover_of[grant.pk] is None and grant.provisioning != Grant.Provisioning.DEPROVISIONED:
                removals[grant.entitlement.group_id].add(grant.user_id)  # type: ignore[index]
                grant.provisioning, grant.provisioning_error = Grant.Provisioning.DEPROVISIONED, ""
        membership = get_user_model().groups.through
        for group_id, user_ids in removals.items():
            membership.objects.filter(group_id=group_id, user_id__in=user_ids).delete()
        now = timezone.now()  # the access is gone from here on
        for grant in due:
            grant.ended_at = now
        removed = [g.pk for g in due if g.provisioning == Grant.Provisioning.DEPROVISIONED]
        Grant.objects.filter(pk__in=removed).update(
            provisioning=Grant.Provisioning.DEPROVISIONED, provisioning_error="", ended_at=now
        )
        Grant.objects.filter(pk__in=[g.pk for g in due]).exclude(pk__in=removed).update(ended_at=now)
        _close_requests(due, now)
        notices_to_many(_ended_messages(due, now))
        # Last, so the chain stays locked only for its own insert and the commit.
        record_many([_ended_entry(g, now, cover_of[g.pk]) for g in due])
        return len(due)


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
    ended = 0
    while batch := grants_end_due():
        ended += batch
    ended += sum(
        grant_end(grant_id=pk)
        for pk in Grant.objects.filter(ended_at=None)
        .filter(Q(expires_at__lte=now) | Q(revoked_at__lte=now))
        .values_list("pk", flat=True)
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
