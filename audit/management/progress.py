"""Progress bars for the audit commands: drawn on the command's stderr, and only
when there is enough work for one to help."""

from collections.abc import Iterable
from typing import Any

from django.core.management.base import OutputWrapper
from tqdm import tqdm

PROGRESS_FROM_ROWS = 10_000


def bar(stderr: OutputWrapper, *, enabled: bool) -> Any:
    """A `progress(rows, total, label)` for audit.evidence, or None when off."""

    def progress(rows: Iterable[Any], total: int, label: str) -> Iterable[Any]:
        if not enabled or total < PROGRESS_FROM_ROWS:
            return rows
        # The wrapped stream, not the OutputWrapper: it would end every redraw with a newline.
        return tqdm(rows, total=total, desc=label, unit="row", unit_scale=True, file=stderr._out)

    return progress
