from django.urls import path, re_path, register_converter

from portal.api import access, audit
from portal.api import verification as v
from portal.api.views import UnknownEndpointView, WhoAmIView


class IdConverter:
    """A row id of at most 18 digits, so it always fits a bigint: a longer one is a 404,
    never a database error. OpenAPI type: SPECTACULAR_SETTINGS["PATH_CONVERTER_OVERRIDES"]."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("me/", WhoAmIView.as_view(), name="api-me"),
    path("me/challenges/", v.MyChallengesView.as_view(), name="api-my-challenges"),
    path("me/challenges/<id:challenge_id>/", v.MyChallengeDecideView.as_view(), name="api-my-challenge"),
    path("verifications/", v.VerificationListView.as_view(), name="api-verifications"),
    path("verifications/<id:case_id>/", v.VerificationDetailView.as_view(), name="api-verification"),
    path("verifications/<id:case_id>/challenges/", v.ChallengeCreateView.as_view(), name="api-challenges"),
    path("verifications/<id:case_id>/execute/", v.VerificationExecuteView.as_view(), name="api-execute"),
    path("verifications/<id:case_id>/escalate/", v.VerificationEscalateView.as_view(), name="api-escalate"),
    path("verifications/<id:case_id>/cancel/", v.VerificationCancelView.as_view(), name="api-cancel"),
    path("challenges/<id:challenge_id>/answer/", v.ChallengeAnswerView.as_view(), name="api-answer"),
    path("entitlements/", access.EntitlementListView.as_view(), name="api-entitlements"),
    path("access-requests/", access.AccessRequestListView.as_view(), name="api-access-requests"),
    path(
        "access-requests/<id:request_id>/",
        access.AccessRequestDetailView.as_view(),
        name="api-access-request",
    ),
    path(
        "access-requests/<id:request_id>/approve/",
        access.AccessRequestApproveView.as_view(),
        name="api-access-approve",
    ),
    path(
        "access-requests/<id:request_id>/deny/",
        access.AccessRequestDenyView.as_view(),
        name="api-access-deny",
    ),
    path(
        "access-requests/<id:request_id>/cancel/",
        access.AccessRequestCancelView.as_view(),
        name="api-access-cancel",
    ),
    path("grants/", access.GrantListView.as_view(), name="api-grants"),
    path("grants/<id:grant_id>/revoke/", access.GrantRevokeView.as_view(), name="api-grant-revoke"),
    path("audit-events/", audit.AuditEventListView.as_view(), name="api-audit-events"),
    path("metrics/", audit.MetricsView.as_view(), name="api-metrics"),
    # Last: any other path (a malformed id too) is a 404 in the error shape, even with DEBUG on.
    # Only paths ending in a slash, so APPEND_SLASH still redirects the others here.
    re_path(r"^[\s\S]*/$", UnknownEndpointView.as_view()),
]
