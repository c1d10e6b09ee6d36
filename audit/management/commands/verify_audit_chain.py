from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.models import AuditEvent
from audit.services import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit non-zero naming the first row that breaks it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: Any, no_progress: bool = False, **options: Any) -> None:
        total = AuditEvent.objects.count()
        progress = None
        if not no_progress and total > 10_000:

            def progress(rows):  # type: ignore[no-untyped-def]
                return tqdm(rows, total=total, unit="row", file=self.stderr._out)

        report = verify_chain(progress=progress)
        if not report.ok:
            where = f"first bad row: id {report.first_bad_id}" if report.first_bad_id else "chain head"
            raise CommandError(f"audit chain BROKEN at seq {report.first_bad_seq} ({where}): {report.reason}")
        self.stdout.write(f"audit chain intact: {report.count} events, head {report.head_hash}")
