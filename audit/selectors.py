"""Reads of the audit trail shared by the admin, the API, the dashboard and the
evidence bundle. All of them stay cheap on tables of millions of rows."""

from collections.abc import Iterable
from typing import Any

from django.db import connection, models
from django.db.models import Q, QuerySet

from audit.models import AuditEvent

TIMELINE_LIMIT = 500
# Newest first, for every listing of events (admin, API, exports). By time, then
# chain position: on millions of rows, `-seq` alone made PostgreSQL walk the seq
# index backwards through every row newer than a date range (0.3-0.5 s); by
# `at` the same query reads the `at` index from the range's end (under 1 ms).
# `at` is taken under the chain lock, so it agrees with `seq`; `seq` breaks ties.
NEWEST_FIRST = ("-at", "-seq")


def events_between(since: Any, until: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(at__gte=since, at__lt=until)


def _leads_an_index(field: "models.Field[Any, Any]") -> bool:
    return (
        getattr(field, "db_index", False)
        or field.unique
        or any(index.fields and index.fields[0] == field.name for index in field.model._meta.indexes)
    )


def distinct_values(model: type[models.Model], field_name: str, *, limit: int = 200) -> list[Any]:
    """The distinct non-empty values of an indexed column, at most `limit` of them.

    `SELECT DISTINCT` reads every row (seconds on millions); this walks the
    column's index instead, one probe per value (a "loose index scan" written
    as a recursive CTE, which PostgreSQL and SQLite both run from the index).
    """
    field = model._meta.get_field(field_name)
    if not isinstance(field, models.Field) or field.is_relation or not _leads_an_index(field):
        raise ValueError(f"{model._meta.label}.{field_name} is not an indexed column")
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(field.column)
    # Only the quoted names of a real, indexed model field reach the SQL text.
    sql = (
        f"WITH RECURSIVE walk(val, depth) AS ("  # noqa: S608
        f" SELECT MIN({col}), 1 FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > walk.val), depth + 1"
        f" FROM walk WHERE walk.val IS NOT NULL AND depth < %s"
        f") SELECT val FROM walk WHERE val IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [value for (value,) in cursor.fetchall() if value != ""]


def target_key(obj: models.Model) -> tuple[str, str]:
    """How audit.services.record names `target=obj`."""
    return obj._meta.label_lower, str(obj.pk)


def events_for(targets: Iterable[models.Model], *, limit: int = TIMELINE_LIMIT) -> list[AuditEvent]:
    """The events recorded about these objects, oldest first, in one query
    (served by the (target_type, target_id, seq) index)."""
    condition = Q()
    for obj in targets:
        if obj.pk is not None:
            target_type, target_id = target_key(obj)
            condition |= Q(target_type=target_type, target_id=target_id)
    if not condition:
        return []
    return list(AuditEvent.objects.filter(condition).order_by("seq")[:limit])


def chain_length() -> int:
    """Rows in the chain, read from the newest `seq` (one index probe) instead
    of a COUNT(*) over the table; gaps are what verify_chain looks for."""
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def last_chain_verification() -> AuditEvent | None:
    """The newest result of the scheduled chain check (audit.tasks)."""
    return AuditEvent.objects.filter(verb="audit_chain_verified").order_by("-seq").first()
