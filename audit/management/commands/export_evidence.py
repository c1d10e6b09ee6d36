from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.context import acting_as
from audit.evidence import evidence_write
from audit.management.progress import bar
from audit.models import Outcome
from audit.periods import Period, PeriodError
from audit.services import record


class Command(BaseCommand):
    help = (
        "Bundle the audit events of a period with the chain proof, the policy versions in force "
        "and the metrics into one zip. A bare --until date includes that whole day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", metavar="OUT.zip", help="Where to write the bundle.")
        parser.add_argument("--since", required=True, help="YYYY-MM-DD or ISO 8601 date-time (inclusive).")
        parser.add_argument(
            "--until", help="YYYY-MM-DD (that day included) or date-time (exclusive); default now."
        )
        parser.add_argument("--force", action="store_true", help="Replace OUT.zip if it exists.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw progress bars.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            period = Period.parse(options["since"], options["until"])
        except PeriodError as exc:
            raise CommandError(str(exc)) from exc
        out = Path(options["out"])
        if out.suffix.lower() != ".zip":
            raise CommandError(f"{out}: the bundle is a zip; name it *.zip")
        if out.exists() and not options["force"]:
            raise CommandError(f"{out} exists; pass --force to replace it")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory")
        with acting_as("export_evidence"):
            try:
                summary = evidence_write(
                    period=period, out=out, progress=bar(self.stderr, enabled=not options["no_progress"])
                )
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from exc
            chain = summary.chain
            record(
                "evidence_exported",
                outcome=Outcome.SUCCESS if chain.ok else Outcome.FAILURE,
                data={
                    "since": period.since.isoformat(),
                    "until": period.until.isoformat(),
                    "events": summary.events,
                    "file": out.name,
                    "chain_ok": chain.ok,
                },
            )
        self.stdout.write(
            f"{summary.events} events from {period.since.isoformat()} to {period.until.isoformat()} "
            f"written to {out}"
        )
        if not chain.ok:
            raise CommandError(
                f"audit chain BROKEN at seq {chain.first_bad_seq}: {chain.reason} "
                f"(the bundle records this result)"
            )
        self.stdout.write(f"chain intact: {chain.count} events, head {chain.head_hash}")
