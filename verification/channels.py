"""Delivery: email through Django's email backend, SMS through SMS_BACKEND, and
signed webhooks. Each raises DeliveryError on failure so the caller can retry."""

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vigil-Signature"


class DeliveryError(Exception):
    pass


def email_send(*, to: str, template: str, context: dict[str, Any]) -> None:
    """Render verification/email/<template>.{subject,txt,html} and send it."""
    subject = render_to_string(f"verification/email/{template}.subject.txt", context).strip()
    text = render_to_string(f"verification/email/{template}.txt", context)
    html = render_to_string(f"verification/email/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except OSError as exc:  # smtplib errors are OSErrors: refused, timeout, TLS
        raise DeliveryError(f"email to {to}: {exc}") from exc


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_post(*, url: str, payload: dict[str, Any], secret: str, timeout: float = 5.0) -> int:
    """POST JSON with an HMAC-SHA256 signature header; return the status code."""
    body = json.dumps(payload, sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL comes from the operator's settings
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook {url} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"webhook {url}: {exc}") from exc


def sms_send(*, to: str, body: str) -> None:
    backend = settings.SMS_BACKEND
    if backend == "console":
        logger.info("SMS to %s: %s", to, body)
    elif backend == "file":
        try:
            with Path(settings.SMS_FILE_PATH).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"to": to, "body": body}) + "\n")
        except OSError as exc:
            raise DeliveryError(f"SMS file {settings.SMS_FILE_PATH}: {exc}") from exc
    else:
        webhook_post(
            url=settings.SMS_WEBHOOK_URL, payload={"to": to, "body": body}, secret=settings.SMS_WEBHOOK_SECRET
        )
