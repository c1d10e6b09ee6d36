"""Messages to people about their own cases, sent after the commit that caused them."""

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction


def _notice_task() -> Any:
    from verification.tasks import notice_send

    return notice_send


def notice_to(user: Any, *, headline: str, message: str, link: str = "", link_label: str = "") -> None:
    """Email a notice to `user` once the current transaction commits."""
    if not user.email:
        return
    context = {
        "name": user.get_full_name() or user.get_username(),
        "headline": headline,
        "message": message,
        "link": link,
        "link_label": link_label,
        "report_url": f"{settings.PORTAL_URL}/me/",
    }
    transaction.on_commit(partial(_notice_task().delay, user.email, context))


def sms_notice(number: str, body: str) -> None:
    """Text `number` once the current transaction commits."""
    from verification.tasks import sms_notice_send

    if number:
        transaction.on_commit(partial(sms_notice_send.delay, number, body))


def notice_security(*, headline: str, message: str) -> None:
    admins = get_user_model().objects.filter(groups__name=settings.SECURITY_ADMIN_GROUP, is_active=True)
    for admin in admins.exclude(email=""):
        notice_to(
            admin,
            headline=headline,
            message=message,
            link=f"{settings.PORTAL_URL}/admin/",
            link_label="Open Vigil",
        )
