"""Who and where a request comes from, for audit rows written deep in services."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class RequestContext:
    ip: str = ""
    request_id: str = ""
    actor: str = ""


_current: ContextVar[RequestContext | None] = ContextVar("audit_request_context", default=None)
_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def current() -> RequestContext:
    ctx = _current.get() or RequestContext()
    request = _request.get()
    if not ctx.actor and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return RequestContext(ip=ctx.ip, request_id=ctx.request_id, actor=user.get_username())
    return ctx


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Names the actor for audit rows written outside a request (tasks, commands)."""
    base = _current.get() or RequestContext()
    token = _current.set(RequestContext(ip=base.ip, request_id=base.request_id, actor=actor))
    try:
        yield
    finally:
        _current.reset(token)


class RequestContextMiddleware:
    """Tags each request with an id (echoed as X-Request-ID) and the client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if supplied.isascii() and 0 < len(supplied) <= 64 else uuid.uuid4().hex
        ctx = RequestContext(ip=request.META.get("REMOTE_ADDR", "")[:45], request_id=request_id)
        ctx_token = _current.set(ctx)
        request_token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(ctx_token)
            _request.reset(request_token)
        response["X-Request-ID"] = request_id
        return response
