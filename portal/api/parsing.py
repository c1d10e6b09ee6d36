from typing import Any

from django.http import QueryDict
from rest_framework import exceptions, parsers, serializers


def parsed(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated input, or a 400 in the error shape (the exception handler renders it)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _has_nul(data: Any) -> bool:
    pending = [data]  # a loop, not recursion: JSON may nest deeper than Python's stack
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, QueryDict):
            pending.extend(item for key, values in value.lists() for item in (key, *values))
        elif isinstance(value, dict):
            pending.extend(item for pair in value.items() for item in pair)
        elif isinstance(value, list):
            pending.extend(value)
    return False


def refuse_nul(data: Any) -> Any:
    """PostgreSQL text cannot hold NUL: a body carrying one is bad input (400) at the
    door, whichever field it is bound for, not a database error (500) deep inside."""
    if _has_nul(data):
        raise exceptions.ParseError("Text may not contain NUL (0x00) characters.", code="nul_character")
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return refuse_nul(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return refuse_nul(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data_and_files = super().parse(stream, media_type, parser_context)
        refuse_nul([data_and_files.data, list(data_and_files.files)])
        return data_and_files
