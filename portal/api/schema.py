"""The OpenAPI schema declares the errors each operation can answer with, all in the one
shape of portal.api.errors, so a client (or a fuzzer) can hold the API to them."""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable, machine-readable: what went wrong.")
    # A field, not the Serializer.errors property: DRF takes declared fields off the class.
    errors = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="Bad input (400): the messages by field."
    )


ERROR_DESCRIPTIONS = {
    400: "Bad input.",
    401: "No credentials, or invalid ones.",
    403: "Not allowed.",
    404: "Not yours, or absent.",
    409: "Not in a state that allows this.",
    415: "The body is not JSON (or form data).",
    429: "Throttled: try again after Retry-After seconds.",
}


class ErrorResponsesAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        error = {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}
        for status_code in self._error_statuses(operation):
            operation["responses"].setdefault(
                str(status_code),
                {"description": ERROR_DESCRIPTIONS[status_code], "content": {"application/json": error}},
            )
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> list[int]:
        located = {parameter["in"] for parameter in operation.get("parameters", [])}
        statuses = [401, 403]  # every operation needs credentials; roles and objects decide the rest
        if "requestBody" in operation or "query" in located:
            statuses.append(400)
        if "requestBody" in operation:
            statuses.append(415)
        if "path" in located:
            statuses.append(404)
        if self.method == "POST":
            statuses.append(409)
        if self.view.get_throttles():
            statuses.append(429)
        return sorted(statuses)
