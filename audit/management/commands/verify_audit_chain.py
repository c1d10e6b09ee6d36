from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.management.progress import bar
from audit.selectors import chain_length
from audit.services import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit non-zero naming the first row that breaks it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: Any, no_progress: bool = False, **options: Any) -> None:
        draw = bar(self.stderr, enabled=not no_progress)
        length = chain_length()
        report = verify_chain(progress=lambda rows: draw(rows, length, "verify chain"))
        if not report.ok:
            where = f"first bad row: id {report.first_bad_id}" if report.first_bad_id else "chain head"
            raise CommandError(f"audit chain BROKEN at seq {report.first_bad_seq} ({where}): {report.reason}")
        self.stdout.write(f"audit chain intact: {report.count} events, head {report.head_hash}")
