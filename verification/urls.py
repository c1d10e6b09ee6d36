from django.urls import path

from verification import views

app_name = "verification"
urlpatterns = [
    path("reset/<str:token>/", views.password_reset, name="password-reset"),
    path("enrol/<str:token>/", views.enrol, name="enrol"),
    path("cancel/<str:token>/", views.cancel, name="cancel"),
]
