"""Streaming CSV and JSON Lines of any queryset, in constant memory.

Rows come from `.iterator()` (a server-side cursor on PostgreSQL) and leave as
they are read: exporting a million audit events holds one chunk at a time.
"""

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any
from uuid import UUID

from django.contrib.admin.utils import get_fields_from_path
from django.db.models import Case, CharField, F, JSONField, Model, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast, Concat
from django.http import StreamingHttpResponse
from django.utils import timezone

CHUNK_SIZE = 5000
# Rows per piece of the response: one write per row would cost more than the row.
BATCH_ROWS = 500
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# A spreadsheet runs a cell starting with these as a formula; failed-login
# usernames are typed by strangers, so CSV cells are defused (OWASP "CSV
# injection"). JSON Lines keeps every value exactly as recorded.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def json_default(value: Any) -> Any:
    """Exact values: `at` keeps its microseconds, as the audit hash covers them."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, default=json_default, separators=(",", ":"), ensure_ascii=False) + "\n"


def _formula_start(name: str) -> Q:
    return reduce(or_, (Q(**{f"{name}__startswith": char}) for char in _FORMULA_START))


def _csv_columns(queryset: QuerySet[Any], fields: Sequence[str]) -> tuple[QuerySet[Any], list[str]]:
    """Each column as the database can already hand it to csv.writer, so no
    Python runs per cell (it was most of a million-row export's time): JSON as
    its text, and text that a spreadsheet would run defused with a leading `'`."""
    annotations: dict[str, Any] = {}
    columns = []
    for name in fields:
        field = get_fields_from_path(queryset.model, name)[-1]
        alias = "csv_" + name.replace("__", "_")
        if isinstance(field, JSONField):
            annotations[alias] = Cast(name, TextField())
        elif isinstance(field, CharField | TextField):
            annotations[alias] = Case(
                When(_formula_start(name), then=Concat(Value("'"), F(name))),
                default=F(name),
                output_field=TextField(),
            )
        else:
            columns.append(name)
            continue
        columns.append(alias)
    return queryset.annotate(**annotations), columns


class _Echo:
    """A file that hands back what is written, so csv.writer feeds a generator."""

    def write(self, value: str) -> str:
        return value


def _batched(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == BATCH_ROWS:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def csv_lines(queryset: QuerySet[Any], fields: Sequence[str]) -> Iterator[str]:
    """Dates and times as `str()` gives them (ISO 8601 with a space), empty for NULL."""
    writer = csv.writer(_Echo())
    queryset, columns = _csv_columns(queryset, fields)
    rows = queryset.values_list(*columns).iterator(chunk_size=CHUNK_SIZE)
    yield writer.writerow(fields)
    yield from _batched(map(writer.writerow, rows))


def jsonl_lines(queryset: QuerySet[Any], fields: Sequence[str]) -> Iterator[str]:
    rows = queryset.values_list(*fields).iterator(chunk_size=CHUNK_SIZE)
    yield from _batched(json_line(dict(zip(fields, row, strict=True))) for row in rows)


def default_fields(model: type[Model]) -> list[str]:
    """Every column of the model, foreign keys as their raw id."""
    return [f.attname for f in model._meta.concrete_fields]


def export_response(queryset: QuerySet[Any], fields: Sequence[str], *, fmt: str) -> StreamingHttpResponse:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = csv_lines(queryset, fields) if fmt == "csv" else jsonl_lines(queryset, fields)
    response = StreamingHttpResponse(lines, content_type=FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = (
        f'attachment; filename="{queryset.model._meta.model_name}-{stamp}.{fmt}"'
    )
    return response
