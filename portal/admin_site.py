from typing import Any

from django.urls import URLPattern, path
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import OTPAuthenticationForm

from verification.devices import authenticator_of


class AuthenticatorByDefault:
    """Password + OTP. Without an explicit device choice, the user's authenticator app is
    used, and only that one device is checked (no search across devices). With several,
    the most recently enrolled wins: re-enrolling (a new phone) must make the new app work."""

    cleaned_data: dict[str, Any]

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)  # type: ignore[misc]
        if device is None and not self.cleaned_data.get("otp_device"):
            device = authenticator_of(user)
        return device


class AdminLoginForm(AuthenticatorByDefault, OTPAdminAuthenticationForm):
    pass


class PortalLoginForm(AuthenticatorByDefault, OTPAuthenticationForm):
    """The same login for everyone's own page (/me/), staff or not."""


class VigilAdminSite(OTPAdminSite):
    """The one admin: a staff user gets in only after password and OTP (django-otp)."""

    site_header = "Vigil"
    site_title = "Vigil"
    index_title = "Verification, access and audit"
    login_form = AdminLoginForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def get_urls(self) -> list[URLPattern]:
        from portal import console

        return [
            path("console/", self.admin_view(console.console_open), name="console-open"),
            path("console/case/<int:case_id>/", self.admin_view(console.console_case), name="console-case"),
            *super().get_urls(),
        ]
