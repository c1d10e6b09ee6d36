from django_otp.admin import OTPAdminSite


class VigilAdminSite(OTPAdminSite):
    """The one admin: a staff user gets in only after password and OTP (django-otp)."""

    site_header = "Vigil"
    site_title = "Vigil"
    index_title = "Verification, access and audit"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
