"""Logins, failed logins, failed OTPs and admin changes go on the record."""

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_otp.forms import otp_verification_failed

from audit.models import Outcome
from audit.services import record


@receiver(user_logged_in)
def _on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record("login", actor=user, subject=user)


@receiver(user_logged_out)
def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record("logout", actor=user, subject=user, outcome=Outcome.INFO)


@receiver(user_login_failed)
def _on_login_failed(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
    # Only the username: the credentials dict also holds the password.
    username = str(credentials.get("username", ""))[:150]
    record("login_failed", outcome=Outcome.FAILURE, actor=username, subject=username)


@receiver(otp_verification_failed)
def _on_otp_failed(sender: Any, user: Any, **kwargs: Any) -> None:
    record("otp_failed", outcome=Outcome.FAILURE, actor=user, subject=user)


@receiver(post_save, sender=LogEntry)
def _on_admin_change(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    verb = {ADDITION: "admin_add", CHANGE: "admin_change", DELETION: "admin_delete"}
    record(
        verb.get(instance.action_flag, "admin_change"),
        actor=instance.user,
        data={
            "model": instance.content_type.model if instance.content_type else "",
            "object_id": instance.object_id,
            "object": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )
