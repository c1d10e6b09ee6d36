from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.context import acting_as
from portal.user_import import users_import


class Command(BaseCommand):
    help = (
        "Create or update users from CSV: username,email,phone,manager,department,title,is_privileged,roles"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        try:
            handle = file.open("rb")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        with handle, acting_as("import_users"):
            report = users_import(handle)
        for line, message in report.errors:
            self.stderr.write(f"{file}:{line}: {message}")
        self.stdout.write(
            f"{len(report.created)} created, {len(report.updated)} updated, {len(report.errors)} bad row(s)"
        )
        if report.errors:
            raise CommandError(f"{len(report.errors)} row(s) were not imported", returncode=1)
