import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.context import acting_as
from audit.management.progress import bar
from audit.models import GENESIS_HASH, AuditEvent, ChainHead, Outcome
from audit.selectors import chain_length
from audit.services import record, verify_chain

CHECKPOINT = re.compile(r"^(?P<hash>[0-9a-f]{64}):(?P<count>\d{1,18})$")


class Command(BaseCommand):
    help = (
        "Print the chain's head as HASH:COUNT, to keep outside Vigil; with --check HASH:COUNT, "
        "exit non-zero unless the chain still holds that event unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", metavar="HASH:COUNT", help="A checkpoint printed earlier.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: Any, check: str | None = None, no_progress: bool = False, **options: Any) -> None:
        with acting_as("audit_checkpoint"):
            if check is None:
                self._print_checkpoint()
            else:
                self._check(check.strip().lower(), progress=not no_progress)

    def _print_checkpoint(self) -> None:
        head = ChainHead.objects.filter(pk=1).first()
        head_hash, count = (head.hash, head.count) if head else (GENESIS_HASH, 0)
        newest = AuditEvent.objects.filter(seq=count).values_list("hash", flat=True).first()
        if count and newest != head_hash:
            raise CommandError(
                "the chain head does not match the newest event; "
                "run verify_audit_chain before taking a checkpoint"
            )
        record("audit_checkpoint_taken", data={"hash": head_hash, "count": count})
        self.stdout.write(f"head hash {head_hash}, {count} events; keep this line outside Vigil:")
        self.stdout.write(f"{head_hash}:{count}")

    def _check(self, checkpoint: str, *, progress: bool) -> None:
        match = CHECKPOINT.match(checkpoint)
        if match is None:
            raise CommandError(
                f"--check {checkpoint[:80]!r}: expected HASH:COUNT, the 64 hex digits and the count "
                "audit_checkpoint printed"
            )
        expected, count = match["hash"], int(match["count"])
        draw = bar(self.stderr, enabled=progress)
        length = chain_length()
        report = verify_chain(progress=lambda rows: draw(rows, length, "verify chain"))
        problem = ""
        if not report.ok:
            problem = f"the audit chain is BROKEN at seq {report.first_bad_seq}: {report.reason}"
        elif count > report.count:
            problem = f"the chain holds {report.count} events; the checkpoint's event {count} is gone"
        else:
            found = (
                GENESIS_HASH
                if count == 0
                else AuditEvent.objects.filter(seq=count).values_list("hash", flat=True).first()
            )
            if found != expected:
                problem = (
                    f"event {count} now hashes to {found}, the checkpoint says {expected}: "
                    "history up to the checkpoint was rewritten"
                )
        record(
            "audit_checkpoint_checked",
            outcome=Outcome.FAILURE if problem else Outcome.SUCCESS,
            data={"hash": expected, "count": count, "problem": problem},
        )
        if problem:
            raise CommandError(problem)
        self.stdout.write(
            f"checkpoint {expected}:{count} holds; chain intact, {report.count - count} events since"
        )
