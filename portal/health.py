import sys

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app

# What the driver raises while the database restarts or is unreachable: transient, worth a retry.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
UNAVAILABLE_DETAIL = "The service cannot reach its database; try again shortly."
RETRY_AFTER_SECONDS = 5


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means "down"; the class name says which
        return f"error: {type(exc).__name__}"


def _broker_status() -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 otherwise (for load balancers)."""
    status = {"db": _database_status(), "broker": _broker_status()}
    healthy = all(value == "ok" for value in status.values())
    return JsonResponse({**status, "status": "ok" if healthy else "degraded"}, status=200 if healthy else 503)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A database that is away is a 503 the client may retry (the transaction
    rolled back): in the API's error shape under /api/, a plain page elsewhere. This also
    catches failures in middleware (a session lookup), which the API's handler never sees."""
    if not isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": UNAVAILABLE_DETAIL, "code": "unavailable"}, status=503)
    else:
        # No request context: its processors would query the database again.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
