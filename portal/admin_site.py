from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import URLPattern, path
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import OTPAuthenticationForm

from portal.login_throttle import (
    login_failure_record,
    login_locked_until,
    login_refusal,
    login_success_record,
)
from verification.devices import authenticator_of

# One answer for every way a sign-in fails: no reply tells a guesser the password was right.
SIGN_IN_REFUSED = (
    "Please enter a correct username, password and authenticator code. "
    "All three are checked together; each field may be case-sensitive."
)


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

    def clean_otp(self, user: Any) -> None:
        # No "send me a code" step at sign-in (django-otp would store that code in clear):
        # the code is typed with the password, and signing in without one is a failure.
        if user is not None and not self.cleaned_data.get("otp_token"):
            raise ValidationError("no authenticator code", code="token_required")
        super().clean_otp(user)  # type: ignore[misc]

    def _update_form(self, user: Any) -> None:
        """Left as it was: django-otp would show the password again and list the person's
        devices, but only after a right password, so the page would confirm it to a guesser."""


class LoginThrottled:
    """Paused for a while after repeated failures, per username and per client address
    (portal.login_throttle). A paused form refuses before the password is checked; wrong
    passwords and wrong codes count, and only a full sign-in clears the username's count."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        ip = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        until = login_locked_until(username=username, ip=ip)
        if until is not None:
            raise ValidationError(login_refusal(username=username, until=until), code="throttled")
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            login_failure_record(username=username, ip=ip)
            # Nor may the template see who the password matched (django-otp's shows more then).
            self.user_cache = None
            raise ValidationError(SIGN_IN_REFUSED, code="invalid_login") from exc
        if self.get_user() is not None:  # type: ignore[attr-defined]
            login_success_record(username=username)
        return cleaned


class AdminLoginForm(LoginThrottled, AuthenticatorByDefault, OTPAdminAuthenticationForm):
    pass


class PortalLoginForm(LoginThrottled, AuthenticatorByDefault, OTPAuthenticationForm):
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
