"""The audit API of CONTRACT: the trail, filtered and paged newest first, and the
metrics of what was verified and prevented. Auditors and security admins only."""

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.filters import AuditEventFilter
from audit.metrics import metrics_summary
from audit.models import AuditEvent
from audit.periods import Period, PeriodError
from audit.selectors import NEWEST_FIRST


class CanReadAudit(BasePermission):
    message = "Only auditors and security admins may read the audit trail."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("audit.view_auditevent"))


class AuditCursorPagination(CursorPagination):
    """Keyset pages, newest first (audit.selectors.NEWEST_FIRST): page 10,000
    costs what page 1 does, where an OFFSET would read and skip every row before it."""

    ordering = NEWEST_FIRST
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        """Strict, as the schema says: a bad page_size is a 400, not quietly replaced."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ParseError("Invalid cursor.", code="invalid_cursor") from exc


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "at",
            "actor",
            "subject",
            "verb",
            "outcome",
            "tier",
            "channel",
            "action",
            "target_type",
            "target_id",
            "ip",
            "request_id",
            "data",
            "prev_hash",
            "hash",
        ]


class AuditEventListView(ListAPIView[AuditEvent]):
    """Audit events, newest first. `until` as a bare date includes that whole day."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, CanReadAudit]
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter
    pagination_class = AuditCursorPagination


class TallySerializer(serializers.Serializer):
    opened = serializers.IntegerField()
    verified = serializers.IntegerField()
    failed = serializers.IntegerField()
    blocked = serializers.IntegerField()
    expired = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    escalated = serializers.IntegerField()
    executed = serializers.IntegerField()
    refused = serializers.IntegerField(help_text="Executions refused (action_blocked).")
    reported = serializers.IntegerField(help_text="Pushes reported by the subject as not theirs.")
    prevented = serializers.IntegerField()


class SliceSerializer(TallySerializer):
    key = serializers.CharField(allow_null=True, help_text="The action, tier, channel or agent.")


class CasesSerializer(serializers.Serializer):
    opened = serializers.IntegerField()
    verified = serializers.IntegerField()
    failed = serializers.IntegerField()
    blocked = serializers.IntegerField()
    expired = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    escalated = serializers.IntegerField()


class ActionsSerializer(serializers.Serializer):
    executed = serializers.IntegerField()
    prevented = serializers.IntegerField()
    refused_at_execution = serializers.IntegerField()


class PreventedSerializer(serializers.Serializer):
    blocked_by_policy = serializers.IntegerField()
    failed_verification = serializers.IntegerField()
    reported_by_subject = serializers.IntegerField()
    refused_at_execution = serializers.IntegerField()


class TrustGapSerializer(serializers.Serializer):
    cases = serializers.IntegerField(help_text="Service-desk cases opened in the period.")
    concluded = serializers.IntegerField()
    verified = serializers.IntegerField()
    not_verified = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True, help_text="not_verified / concluded.")


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    verified = serializers.IntegerField()
    prevented = serializers.IntegerField()


class SubjectFailuresSerializer(serializers.Serializer):
    subject = serializers.CharField()
    failures = serializers.IntegerField()


class MetricsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    cases = CasesSerializer()
    actions = ActionsSerializer()
    prevented = PreventedSerializer()
    impersonation_reports = serializers.IntegerField()
    median_seconds_to_verify = serializers.FloatField(allow_null=True)
    trust_gap = TrustGapSerializer()
    by_action = SliceSerializer(many=True)
    by_tier = SliceSerializer(many=True)
    by_channel = SliceSerializer(many=True)
    by_agent = SliceSerializer(many=True)
    per_day = DaySerializer(many=True)
    top_failing_subjects = SubjectFailuresSerializer(many=True)


PERIOD_PARAMETERS = [
    OpenApiParameter(
        "since", str, description="YYYY-MM-DD or ISO 8601 date-time, inclusive; default 30 days before until."
    ),
    OpenApiParameter(
        "until",
        str,
        description="YYYY-MM-DD (that whole day) or ISO 8601 date-time (exclusive); default now.",
    ),
]


class MetricsView(APIView):
    """What was verified and what was prevented in a period (audit.metrics)."""

    permission_classes = [IsAuthenticated, CanReadAudit]

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=MetricsSerializer)
    def get(self, request: Request) -> Response:
        try:
            period = Period.parse(request.query_params.get("since"), request.query_params.get("until"))
        except PeriodError as exc:
            raise exceptions.ValidationError({"period": [str(exc)]}, code="invalid_period") from exc
        return Response(MetricsSerializer(metrics_summary(period).as_dict()).data)
