"""Pages behind the links people receive. Thin: a service does the work."""

import io

import qrcode
import qrcode.image.svg
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from verification.errors import VerificationError
from verification.fallback import cooling_off_cancel
from verification.links import link_peek
from verification.models import OneTimeLink
from verification.self_service import enrolment_complete, enrolment_device, password_reset_complete

GONE = "This link is invalid, already used or expired. Ask the service desk for a new one."


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset(request: HttpRequest, token: str) -> HttpResponse:
    if link_peek(token=token, kind=OneTimeLink.Kind.PASSWORD_RESET) is None:
        return render(request, "verification/link_done.html", {"message": GONE}, status=410)
    error = ""
    if request.method == "POST":
        try:
            password_reset_complete(
                token=token,
                password=request.POST.get("password", ""),
                password_again=request.POST.get("password_again", ""),
            )
        except VerificationError as exc:
            error = str(exc)
        else:
            return render(request, "verification/link_done.html", {"message": "Your new password is set."})
    return render(request, "verification/password_reset.html", {"error": error}, status=400 if error else 200)


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest, token: str) -> HttpResponse:
    device = enrolment_device(token=token)
    if device is None:
        return render(request, "verification/link_done.html", {"message": GONE}, status=410)
    error = ""
    if request.method == "POST":
        try:
            enrolment_complete(token=token, code=request.POST.get("code", ""))
        except VerificationError as exc:
            error = str(exc)
        else:
            return render(
                request, "verification/link_done.html", {"message": "Your authenticator is enrolled."}
            )
    # The QR code is shown to the person holding the link, never to an agent.
    context = {"qr": mark_safe(_qr_svg(device.config_url)), "uri": device.config_url, "error": error}  # noqa: S308
    return render(request, "verification/enrol.html", context, status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    if link_peek(token=token, kind=OneTimeLink.Kind.CANCEL) is None:
        return render(request, "verification/link_done.html", {"message": GONE}, status=410)
    if request.method == "POST":
        try:
            cooling_off_cancel(token=token)
        except VerificationError as exc:
            return render(request, "verification/link_done.html", {"message": str(exc)}, status=409)
        return render(
            request,
            "verification/link_done.html",
            {"message": "The reset is cancelled. Security has a record of it."},
        )
    return render(request, "verification/cancel.html")
