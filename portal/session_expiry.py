"""Staff sessions end after a short idle time and at a fixed lifetime from login.

Django's own SESSION_COOKIE_AGE slides forward whenever the session is saved, and
this middleware saves it as a staff user works, so the lifetime is counted here
from the login instead.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from audit.models import Outcome
from audit.services import record

STARTED_AT = "_staff_session_started_at"
LAST_SEEN_AT = "_staff_session_last_seen_at"
# At most one session write a minute, not one per request (the console refreshes every
# few seconds); the idle limit is therefore kept to the minute.
LAST_SEEN_RESOLUTION_SECONDS = 60
# Pages that reload themselves (the console, /me/) ask for ?refreshed=1: a page left open
# is not someone working, so it must not keep an idle session alive.
SELF_REFRESH_PARAM = "refreshed"


def _now() -> int:
    return int(timezone.now().timestamp())


def _is_staff(request: HttpRequest) -> bool:
    return request.user.is_authenticated and request.user.is_staff


def _stamp(session: SessionBase, now: int) -> None:
    session.setdefault(STARTED_AT, now)
    if now - int(session.get(LAST_SEEN_AT, 0)) >= LAST_SEEN_RESOLUTION_SECONDS:
        session[LAST_SEEN_AT] = now


def staff_session_start(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """user_logged_in receiver: a fresh login (password and code) starts a fresh lifetime."""
    if request is not None and user.is_staff:
        request.session[STARTED_AT] = request.session[LAST_SEEN_AT] = _now()


class StaffSessionExpiryMiddleware:
    """1. Before the view: past the idle limit or the lifetime, audit and log out
       (the request goes on anonymous, so the view asks for a login).
    2. After the view: note that the staff session was used.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_staff(request):
            self._expire_if_due(request)
        response = self.get_response(request)
        if _is_staff(request) and SELF_REFRESH_PARAM not in request.GET:
            _stamp(request.session, _now())
        return response

    def _expire_if_due(self, request: HttpRequest) -> None:
        session = request.session
        now = _now()
        idle_seconds = now - int(session.get(LAST_SEEN_AT, now))
        age_seconds = now - int(session.get(STARTED_AT, now))
        if idle_seconds > settings.STAFF_SESSION_IDLE_SECONDS:
            reason = "idle"
        elif age_seconds > settings.SESSION_COOKIE_AGE:
            reason = "lifetime"
        else:
            return
        username = request.user.get_username()
        record(
            "session_expired",
            outcome=Outcome.INFO,
            actor=username,
            subject=username,
            data={"reason": reason, "idle_seconds": idle_seconds, "age_seconds": age_seconds},
        )
        logout(request)
        messages.info(request, "Your session expired. Please log in again.")
