"""Reads of the audit trail shared by the admin, the API, the dashboard and the
evidence bundle. All of them stay cheap on tables of millions of rows."""

from collections.abc import Iterable
from typing import Any

from django.db import connection, models
from django.db.models import Q, QuerySet

from audit.models import AuditEvent

# The admin's filter columns; the only names distinct_values() puts into SQL.
DISTINCT_COLUMNS = frozenset({"verb", "outcome", "tier", "channel", "action", "actor", "subject"})
TIMELINE_LIMIT = 500


def events_between(since: Any, until: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(at__gte=since, at__lt=until)


def distinct_values(column: str, *, limit: int = 200) -> list[Any]:
    """The distinct non-empty values of an indexed column of the audit table.

    `SELECT DISTINCT` reads every row (seconds on millions); this walks the
    column's index instead, one probe per value (a "loose index scan" written
    as a recursive CTE, which PostgreSQL and SQLite both run from the index).
    """
    if column not in DISTINCT_COLUMNS:
        raise ValueError(f"not an indexed audit column: {column}")
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    col = connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE walk(val, depth) AS ("  # noqa: S608  (names are whitelisted above)
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


def last_chain_verification() -> AuditEvent | None:
    """The newest result of the scheduled chain check (audit.tasks)."""
    return AuditEvent.objects.filter(verb="audit_chain_verified").order_by("-seq").first()
