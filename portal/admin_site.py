from typing import Any

from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Password + OTP. Without an explicit device choice, the user's authenticator app is
    used: staff log in with TOTP, and only that one device is checked (no token search)."""

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
        return device


class VigilAdminSite(OTPAdminSite):
    """The one admin: a staff user gets in only after password and OTP (django-otp)."""

    site_header = "Vigil"
    site_title = "Vigil"
    index_title = "Verification, access and audit"
    login_form = AdminLoginForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
