"""The access API of CONTRACT: entitlements, requests, approvals, grants."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from policies.access import access_request_cancel, access_request_decide, access_request_submit
from policies.grants import grant_revoke
from policies.models import AccessRequest, Entitlement, Grant
from portal.api.parsing import parsed


class EntitlementSerializer(serializers.ModelSerializer):
    tier = serializers.IntegerField(source="tier.level")
    max_minutes = serializers.IntegerField(
        source="cap_minutes", help_text="The longest grant, tier cap applied."
    )

    class Meta:
        model = Entitlement
        fields = ("id", "name", "system", "tier", "max_minutes")


class EntitlementListView(APIView):
    @extend_schema(responses=EntitlementSerializer(many=True))
    def get(self, request: Request) -> Response:
        entitlements = Entitlement.objects.select_related("tier").order_by("name")
        return Response(EntitlementSerializer(entitlements, many=True).data)


class AccessRequestInSerializer(serializers.Serializer):
    beneficiary = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())
    entitlement = serializers.PrimaryKeyRelatedField(queryset=Entitlement.objects.select_related("tier"))
    justification = serializers.CharField(max_length=2000)
    duration_minutes = serializers.IntegerField(min_value=1)
    ticket = serializers.CharField(max_length=64, allow_blank=True, default="")
    starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    extends = serializers.PrimaryKeyRelatedField(
        queryset=Grant.objects.all(), required=False, allow_null=True, default=None
    )


class AccessRequestOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    verification = serializers.IntegerField(source="verification_id", allow_null=True)
    requester = serializers.CharField(source="requester.username")
    beneficiary = serializers.CharField(source="beneficiary.username")
    entitlement = serializers.CharField(source="entitlement.name")
    duration_minutes = serializers.IntegerField()
    approvals_required = serializers.IntegerField()
    tier = serializers.IntegerField(source="tier_level", allow_null=True)
    respond_by = serializers.DateTimeField()
    closed_reason = serializers.CharField()


def requests_visible_to(user: Any) -> QuerySet[AccessRequest]:
    requests = AccessRequest.objects.select_related("requester", "beneficiary", "entitlement")
    if user.has_perm("policies.review_accessrequest"):
        return requests
    return requests.filter(Q(requester=user) | Q(beneficiary=user) | Q(entitlement__owner=user))


class AccessRequestListView(APIView):
    @extend_schema(request=AccessRequestInSerializer, responses={201: AccessRequestOutSerializer})
    def post(self, request: Request) -> Response:
        data = parsed(AccessRequestInSerializer, request.data)
        created = access_request_submit(requester=request.user, **data)
        return Response(AccessRequestOutSerializer(created).data, status=status.HTTP_201_CREATED)


class AccessRequestDetailView(APIView):
    @extend_schema(responses=AccessRequestOutSerializer)
    def get(self, request: Request, request_id: int) -> Response:
        found = get_object_or_404(requests_visible_to(request.user), pk=request_id)
        return Response(AccessRequestOutSerializer(found).data)


class ApprovalDecisionInSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, allow_blank=True, default="")
    step_up_code = serializers.CharField(
        max_length=16,
        allow_blank=True,
        default="",
        help_text="Your own authenticator code: needed at tier 3 and above.",
    )


def _decide(request: Request, request_id: int, approve: bool) -> Response:
    data = parsed(ApprovalDecisionInSerializer, request.data)
    # A request the caller may not even see is absent to them (404), not forbidden.
    found = get_object_or_404(requests_visible_to(request.user), pk=request_id)
    decided = access_request_decide(
        request=found,
        approver=request.user,
        approve=approve,
        comment=data["comment"],
        step_up_code=data["step_up_code"],
    )
    return Response(AccessRequestOutSerializer(decided).data)


class AccessRequestApproveView(APIView):
    @extend_schema(request=ApprovalDecisionInSerializer, responses=AccessRequestOutSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        return _decide(request, request_id, approve=True)


class AccessRequestDenyView(APIView):
    @extend_schema(request=ApprovalDecisionInSerializer, responses=AccessRequestOutSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        return _decide(request, request_id, approve=False)


class AccessRequestCancelView(APIView):
    @extend_schema(request=None, responses=AccessRequestOutSerializer)
    def post(self, request: Request, request_id: int) -> Response:
        found = get_object_or_404(requests_visible_to(request.user), pk=request_id)
        return Response(
            AccessRequestOutSerializer(access_request_cancel(request=found, actor=request.user)).data
        )


class GrantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(source="user.username")
    entitlement = serializers.CharField(source="entitlement.name")
    starts_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    state = serializers.SerializerMethodField()
    provisioning = serializers.CharField()

    def get_state(self, grant: Grant) -> str:
        return grant.state()


def grants_visible_to(user: Any) -> QuerySet[Grant]:
    grants = Grant.objects.select_related("user", "entitlement")
    if user.has_perm("policies.review_accessrequest"):
        return grants
    return grants.filter(Q(user=user) | Q(request__requester=user) | Q(entitlement__owner=user))


class GrantQuerySerializer(serializers.Serializer):
    user = serializers.CharField(required=False, allow_blank=True, max_length=150, help_text="username")
    active = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only grants active now; false: only the others; empty: all",
    )


class GrantListView(APIView):
    @extend_schema(parameters=[GrantQuerySerializer], responses=GrantSerializer(many=True))
    def get(self, request: Request) -> Response:
        # CONTRACT's own example is ?user=&active=: an empty value means "not given".
        query = parsed(GrantQuerySerializer, request.query_params.dict())
        grants = grants_visible_to(request.user).order_by("-starts_at")
        if username := query.get("user"):
            grants = grants.filter(user__username=username)
        active = query.get("active")
        if active is True:
            grants = grants & Grant.objects.active(timezone.now())
        elif active is False:
            grants = grants.exclude(pk__in=Grant.objects.active(timezone.now()).values("pk"))
        return Response(GrantSerializer(grants[:500], many=True).data)


class RevokeInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class GrantRevokeView(APIView):
    @extend_schema(request=RevokeInSerializer, responses=GrantSerializer)
    def post(self, request: Request, grant_id: int) -> Response:
        data = parsed(RevokeInSerializer, request.data)
        grant = get_object_or_404(grants_visible_to(request.user), pk=grant_id)
        return Response(
            GrantSerializer(grant_revoke(grant=grant, actor=request.user, reason=data["reason"])).data
        )
