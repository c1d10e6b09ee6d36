from django.urls import path

from portal.api.views import WhoAmIView

urlpatterns = [
    path("me/", WhoAmIView.as_view(), name="api-me"),
]
