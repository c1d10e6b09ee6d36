"""Throttles on challenges and answers: per caller, and per subject whoever calls, so
many agents or tokens aimed at one person still share one budget (CONTRACT 429).

A view names its `throttle_scope` and says whose verification a request touches with
`throttle_subject(request)`. Rates are REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
(`<scope>` per caller, `<scope>_subject` per subject), counted in the default cache,
which every web process must share (Redis in production, see CACHES)."""

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from audit.models import Outcome
from audit.services import record


class CallerThrottle(SimpleRateThrottle):
    """Per authenticated caller (every view using it requires authentication)."""

    scope_suffix = ""

    def __init__(self) -> None:
        """The scope, hence the rate, comes from the view (see allow_request)."""

    def get_rate(self) -> str | None:
        # Read when asked, not at import: settings overrides (tests) take effect.
        rate = api_settings.DEFAULT_THROTTLE_RATES[str(self.scope)]
        return None if rate is None else str(rate)

    def ident(self, request: Request, view: Any) -> Any:
        return request.user.pk

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        ident = self.ident(request, view)
        return None if ident is None else self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = view.throttle_scope + self.scope_suffix  # type: ignore[attr-defined]
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if super().allow_request(request, view):
            return True
        # The first refusal of a caller in a window is recorded, not each: a flood of
        # refused requests must not turn into a flood of writes on the audit chain.
        if not self.cache.add(f"{self.key}:audited:{request.user.pk}", True, self.duration):
            return False
        record(
            "request_throttled",
            outcome=Outcome.BLOCKED,
            actor=request.user.get_username(),
            subject=view.throttle_subject(request),  # type: ignore[attr-defined]
            data={
                "scope": self.scope,
                "rate": self.rate,
                "method": request.method,
                "path": request.path[:200],
                "retry_after": round(self.wait() or 0),
            },
        )
        return False


class SubjectThrottle(CallerThrottle):
    """Per subject of the case, whichever agent, token or session asks. Requests for
    objects the caller cannot see do not count: a stranger cannot spend a subject's budget."""

    scope_suffix = "_subject"

    def ident(self, request: Request, view: Any) -> Any:
        subject = view.throttle_subject(request)
        return None if subject is None else subject.pk


THROTTLES = [CallerThrottle, SubjectThrottle]
