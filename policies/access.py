"""Access requests and time-boxed grants (DESIGN "policies", CONTRACT "Access").

submit → the requester's step-up (verification, action access_grant) →
approvals by eligible approvers → separation of duties → grant → provision
(worker, after commit) → expiry → deprovision. No urgency bypass exists.
"""

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from policies.models import AccessRequest, Approval, Entitlement, Grant, RequestState
from policies.services import verification_open
from verification.cases import case_cancel
from verification.devices import authenticator_of
from verification.errors import BadRequest, NotAllowed, WrongState
from verification.models import Purpose, VerificationCase
from verification.notices import notice_to

PENDING = (RequestState.PENDING_VERIFICATION, RequestState.PENDING_APPROVAL)
STEP_UP_TIER = 3  # approvers at this tier and above pass their own step-up


def request_event(
    verb: str,
    request: AccessRequest,
    *,
    actor: Any = None,
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
) -> None:
    record(
        verb,
        outcome=outcome,
        actor=actor,
        subject=request.beneficiary,
        tier=request.tier_level,
        action="access_grant",
        target=request,
        data={
            "entitlement": request.entitlement.name,
            "requester": request.requester.get_username(),
            **(data or {}),
        },
    )


def _lock(request: AccessRequest) -> AccessRequest:
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("requester", "beneficiary", "entitlement__tier", "entitlement__owner")
        .get(pk=request.pk)
    )


def _tell(users: list[Any], headline: str, message: str) -> None:
    for user in {user.pk: user for user in users}.values():
        notice_to(
            user,
            headline=headline,
            message=message,
            link=f"{settings.PORTAL_URL}/admin/",
            link_label="Open Vigil",
        )


def approvers_for(entitlement: Entitlement) -> list[Any]:
    users = get_user_model().objects.filter(groups__name=settings.APPROVER_GROUP, is_active=True)
    return [entitlement.owner, *users]


@transaction.atomic
def access_request_submit(
    *,
    requester: Any,
    beneficiary: Any,
    entitlement: Entitlement,
    justification: str,
    duration_minutes: int,
    ticket: str = "",
    starts_at: datetime | None = None,
    extends: Grant | None = None,
) -> AccessRequest:
    """1. Only the beneficiary or their manager of record asks (403 otherwise).
    2. The duration is capped by the entitlement and its tier (400 beyond it).
    3. Open the requester's own step-up case, at least at the entitlement's tier."""
    if requester.pk != beneficiary.pk and beneficiary.manager_id != requester.pk:
        raise NotAllowed("only the beneficiary or their manager of record may ask", code="not_manager")
    cap = entitlement.cap_minutes()
    if not 1 <= duration_minutes <= cap:
        raise BadRequest(f"duration must be 1 to {cap} minutes for {entitlement.name}", code="duration_cap")
    if not justification.strip():
        raise BadRequest("say why the access is needed", code="no_justification")
    now = timezone.now()
    if starts_at is not None and starts_at < now - timedelta(minutes=1):
        raise BadRequest("the start cannot be in the past", code="starts_in_past")
    if extends is not None:
        if extends.user_id != beneficiary.pk or extends.entitlement_id != entitlement.pk:
            raise BadRequest("an extension is for the same person and entitlement", code="bad_extension")
        if extends.state(now) != "active":
            raise WrongState("only an active grant can be extended")
        starts_at = extends.expires_at  # no gap, no overlap beyond the old deadline
    request = AccessRequest.objects.create(
        requester=requester,
        beneficiary=beneficiary,
        entitlement=entitlement,
        justification=justification,
        ticket=ticket,
        duration_minutes=duration_minutes,
        starts_at=starts_at,
        extends=extends,
        respond_by=now + timedelta(hours=settings.ACCESS_REQUEST_WAIT_HOURS),
    )
    case = verification_open(
        subject=requester,
        agent=requester,
        action_code="access_grant",
        channel="portal",
        ticket=ticket,
        purpose=Purpose.ACCESS_REQUEST,
        requester=beneficiary,
        floor_level=entitlement.tier.level,
        floor_reason=f"entitlement {entitlement.name} requires it",
    )
    request.verification = case
    request.tier_level = case.tier_level
    request.approvals_required = _approvals_required(case)
    if case.state == "blocked":
        request.state, request.closed_reason = RequestState.FAILED, "blocked by policy"
    request.save(update_fields=["verification", "tier_level", "approvals_required", "state", "closed_reason"])
    request_event(
        "access_requested",
        request,
        actor=requester,
        data={"duration_minutes": duration_minutes, "case": case.pk, "extends": extends and extends.pk},
    )
    return request


def _approvals_required(case: VerificationCase) -> int:
    from policies.models import RiskTier

    tier = RiskTier.objects.filter(level=case.tier_level or 0).first()
    return tier.approvals_required if tier else 1


def on_requester_verified(case: VerificationCase) -> None:
    """Verification's handler for purpose access_request: the step-up passed."""
    request = AccessRequest.objects.filter(verification=case).first()
    if request is None:
        return
    request = _lock(request)
    if request.state != RequestState.PENDING_VERIFICATION:
        return
    request.state = RequestState.PENDING_APPROVAL
    request.save(update_fields=["state"])
    request_event("access_step_up_passed", request, actor=request.requester)
    _tell(
        approvers_for(request.entitlement),
        f"Access request waiting: {request.entitlement.name}",
        f"{request.requester.get_username()} asks {request.entitlement.name} for "
        f"{request.beneficiary.get_username()}, {request.duration_minutes} min: {request.justification}",
    )


def _is_approver(user: Any) -> bool:
    return bool(user.groups.filter(name=settings.APPROVER_GROUP).exists())


def requests_awaiting(approver: Any) -> QuerySet[AccessRequest]:
    """Requests waiting for a decision `approver` may give: any, for an approver; their own
    entitlements', for an owner; never one they asked for, benefit from or decided already."""
    waiting = (
        AccessRequest.objects.filter(state=RequestState.PENDING_APPROVAL)
        .exclude(requester_id=approver.pk)
        .exclude(beneficiary_id=approver.pk)
        .exclude(approvals__approver_id=approver.pk)
    )
    return waiting if _is_approver(approver) else waiting.filter(entitlement__owner_id=approver.pk)


def _check_approver(request: AccessRequest, approver: Any, step_up_code: str, approve: bool) -> None:
    """Eligibility is checked now, when they decide, not when the request was filed.
    Approving at a high tier takes the approver's own step-up; denying grants nothing."""
    if approver.pk in {request.requester_id, request.beneficiary_id}:
        raise NotAllowed("requesters and beneficiaries never approve their own access", code="self_approval")
    eligible = approver.pk == request.entitlement.owner_id or _is_approver(approver)
    if not eligible or not approver.is_active:
        raise NotAllowed("only the entitlement's owner or an approver decides", code="not_approver")
    if approve and (request.tier_level or 0) >= STEP_UP_TIER:
        device = authenticator_of(approver)
        if device is None or not device.verify_token(str(step_up_code).strip()):
            request_event("approver_step_up_failed", request, actor=approver, outcome=Outcome.FAILURE)
            raise NotAllowed("this tier needs your own authenticator code to approve", code="step_up_failed")


def access_request_decide(
    *, request: AccessRequest, approver: Any, approve: bool, comment: str = "", step_up_code: str = ""
) -> AccessRequest:
    """Approve or deny. A refused step-up is recorded even though the decision is not."""
    with transaction.atomic():
        request = _lock(request)
        if request.state != RequestState.PENDING_APPROVAL:
            raise WrongState(
                f"the request is {request.state}; only a request waiting for approval is decided"
            )
        if Approval.objects.filter(request=request, approver=approver).exists():
            raise WrongState("you have already decided this request", code="already_decided")
        step_up_error = None
        try:
            _check_approver(request, approver, step_up_code, approve)
        except NotAllowed as exc:
            if exc.code != "step_up_failed":
                raise
            step_up_error = exc
        if step_up_error is None:
            return _decide(request, approver, approve, comment)
    raise step_up_error


def _decide(request: AccessRequest, approver: Any, approve: bool, comment: str) -> AccessRequest:
    Approval.objects.create(
        request=request,
        approver=approver,
        comment=comment,
        decision=Approval.Decision.APPROVE if approve else Approval.Decision.DENY,
    )
    people = [request.requester, request.beneficiary]
    if not approve:
        _close(request, RequestState.DENIED, f"denied by {approver.get_username()}: {comment}"[:300])
        request_event(
            "access_denied", request, actor=approver, outcome=Outcome.BLOCKED, data={"comment": comment}
        )
        _tell(people, f"Access denied: {request.entitlement.name}", f"{approver.get_username()}: {comment}")
        return request
    request_event("access_approval", request, actor=approver, data={"comment": comment})
    approvals = request.approvals.filter(decision=Approval.Decision.APPROVE).count()
    if approvals < request.approvals_required:
        return request
    conflict = _conflicting_grant(request)
    if conflict is not None:
        reason = (
            f"separation of duties: {request.beneficiary.get_username()} holds {conflict.entitlement.name} "
            f"(grant {conflict.pk}) until {conflict.expires_at:%Y-%m-%d %H:%M}"
        )
        _close(request, RequestState.DENIED, reason)
        request_event(
            "access_denied",
            request,
            actor="system",
            outcome=Outcome.BLOCKED,
            data={"reason": reason, "conflicting_grant": conflict.pk},
        )
        _tell(people, f"Access denied: {request.entitlement.name}", reason)
        return request
    grant = _grant(request)
    _tell(
        people,
        f"Access approved: {request.entitlement.name}",
        f"{request.entitlement.name} for {request.beneficiary.get_username()} from "
        f"{grant.starts_at:%Y-%m-%d %H:%M} until {grant.expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return request


def _conflicting_grant(request: AccessRequest) -> Grant | None:
    conflicts = request.entitlement.conflicts.all()
    return (
        Grant.objects.active()
        .filter(user=request.beneficiary, entitlement__in=conflicts)
        .select_related("entitlement")
        .first()
    )


def _close(request: AccessRequest, state: str, reason: str) -> None:
    request.state, request.closed_reason, request.decided_at = state, reason, timezone.now()
    request.save(update_fields=["state", "closed_reason", "decided_at"])


def _grant(request: AccessRequest) -> Grant:
    now = timezone.now()
    starts_at = max(request.starts_at or now, now)
    grant = Grant.objects.create(
        request=request,
        user=request.beneficiary,
        entitlement=request.entitlement,
        starts_at=starts_at,
        expires_at=starts_at + timedelta(minutes=request.duration_minutes),
    )
    request.state = RequestState.ACTIVE if starts_at <= now else RequestState.APPROVED
    request.decided_at = now
    request.save(update_fields=["state", "decided_at"])
    record(
        "grant_created",
        actor="system",
        subject=grant.user,
        tier=request.tier_level,
        action="access_grant",
        target=grant,
        data={
            "entitlement": grant.entitlement.name,
            "starts_at": starts_at.isoformat(),
            "expires_at": grant.expires_at.isoformat(),
            "request": request.pk,
        },
    )
    from policies.tasks import grant_expire, grant_provision, schedule

    transaction.on_commit(partial(schedule, grant_provision, grant.pk, starts_at))
    transaction.on_commit(partial(schedule, grant_expire, grant.pk, grant.expires_at))
    return grant


@transaction.atomic
def access_request_cancel(*, request: AccessRequest, actor: Any) -> AccessRequest:
    request = _lock(request)
    if actor.pk != request.requester_id:
        raise NotAllowed("only the requester cancels a request")
    if request.state not in PENDING:
        raise WrongState(f"the request is {request.state}; only a pending request is cancelled")
    _close(request, RequestState.CANCELLED, "cancelled by the requester")
    if request.verification and request.verification.state == "open":
        case_cancel(case=request.verification, actor=actor, reason="access request cancelled")
    request_event("access_cancelled", request, actor=actor, outcome=Outcome.INFO)
    return request


def requests_expire(now: datetime | None = None) -> int:
    """Beat: requests nobody answered in time expire (the wait, not the access duration)."""
    now = now or timezone.now()
    count = 0
    for pk in AccessRequest.objects.filter(state__in=PENDING, respond_by__lt=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            request = _lock(AccessRequest(pk=pk))
            if request.state in PENDING:
                _close(request, RequestState.EXPIRED, "nobody answered in time")
                request_event("access_request_expired", request, actor="system", outcome=Outcome.INFO)
                count += 1
    return count
