"""One shape for every API error: {"detail": ..., "code": ...} (CONTRACT "REST API")."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from policies.engine import UnknownAction
from portal.health import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, UNAVAILABLE_DETAIL
from verification.errors import VerificationError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = UNAVAILABLE_DETAIL
    default_code = "unavailable"
    wait = RETRY_AFTER_SECONDS  # DRF sends it as Retry-After


def _first_code(codes: Any) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        return _first_code(next(iter(codes.values()), "invalid"))
    if isinstance(codes, list) and codes:
        return _first_code(codes[0])
    return "invalid"


class DomainError(exceptions.APIException):
    """A service's domain error, carrying its own status and code."""

    def __init__(self, status_code: int, detail: str, code: str) -> None:
        self.status_code = status_code
        super().__init__(detail, code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, VerificationError):
        exc = DomainError(exc.status, str(exc), exc.code)
    elif isinstance(exc, UnknownAction):
        exc = exceptions.ValidationError({"action": [str(exc)]})
    elif isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        exc = Unavailable()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    detail = exc.detail
    body: dict[str, Any] = {"code": _first_code(exc.get_codes())}
    if isinstance(detail, dict | list):
        body["detail"] = "Invalid input."
        body["errors"] = response.data
    else:
        body["detail"] = str(detail)
    response.data = body
    return response
