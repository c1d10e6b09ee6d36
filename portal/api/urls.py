from django.urls import path

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
]
