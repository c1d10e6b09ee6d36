from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import me
from portal.health import healthz

# A database outage answers 503, not 500 (portal.health.server_error).
handler500 = "portal.health.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("verify/", include("verification.urls")),
    path("me/", me.me, name="me"),
    path("me/login/", me.MeLoginView.as_view(), name="me-login"),
    path("me/challenges/<int:challenge_id>/", me.me_decide, name="me-decide"),
    path("me/resets/<int:case_id>/cancel/", me.me_cancel_reset, name="me-cancel-reset"),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
