from django.urls import path

from portal.api import access, audit
from portal.api import verification as v
from portal.api.views import WhoAmIView

urlpatterns = [
    path("me/", WhoAmIView.as_view(), name="api-me"),
    path("me/challenges/", v.MyChallengesView.as_view(), name="api-my-challenges"),
    path("me/challenges/<int:challenge_id>/", v.MyChallengeDecideView.as_view(), name="api-my-challenge"),
    path("verifications/", v.VerificationListView.as_view(), name="api-verifications"),
    path("verifications/<int:case_id>/", v.VerificationDetailView.as_view(), name="api-verification"),
    path("verifications/<int:case_id>/challenges/", v.ChallengeCreateView.as_view(), name="api-challenges"),
    path("verifications/<int:case_id>/execute/", v.VerificationExecuteView.as_view(), name="api-execute"),
    path("verifications/<int:case_id>/escalate/", v.VerificationEscalateView.as_view(), name="api-escalate"),
    path("verifications/<int:case_id>/cancel/", v.VerificationCancelView.as_view(), name="api-cancel"),
    path("challenges/<int:challenge_id>/answer/", v.ChallengeAnswerView.as_view(), name="api-answer"),
    path("entitlements/", access.EntitlementListView.as_view(), name="api-entitlements"),
    path("access-requests/", access.AccessRequestListView.as_view(), name="api-access-requests"),
    path(
        "access-requests/<int:request_id>/",
        access.AccessRequestDetailView.as_view(),
        name="api-access-request",
    ),
    path(
        "access-requests/<int:request_id>/approve/",
        access.AccessRequestApproveView.as_view(),
        name="api-access-approve",
    ),
    path(
        "access-requests/<int:request_id>/deny/",
        access.AccessRequestDenyView.as_view(),
        name="api-access-deny",
    ),
    path(
        "access-requests/<int:request_id>/cancel/",
        access.AccessRequestCancelView.as_view(),
        name="api-access-cancel",
    ),
    path("grants/", access.GrantListView.as_view(), name="api-grants"),
    path("grants/<int:grant_id>/revoke/", access.GrantRevokeView.as_view(), name="api-grant-revoke"),
    path("audit-events/", audit.AuditEventListView.as_view(), name="api-audit-events"),
    path("metrics/", audit.MetricsView.as_view(), name="api-metrics"),
]
