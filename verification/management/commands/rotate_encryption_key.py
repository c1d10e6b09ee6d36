from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.context import acting_as
from verification.encryption import SecretUnreadable, encryption_key_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret stored encrypted under the first of FIELD_ENCRYPTION_KEYS. "
        "Run after putting a new key first; the old key may be removed once it succeeds."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            with acting_as("rotate_encryption_key"):
                counts = encryption_key_rotate(batch_size=batch_size)
        except SecretUnreadable as exc:
            raise CommandError(str(exc)) from exc
        for label, count in counts.items():
            self.stdout.write(
                f"{label}: {count.rotated} re-encrypted, {count.already_current} already current"
            )
        total = sum(count.rotated for count in counts.values())
        self.stdout.write(f"{total} values re-encrypted with the current key")
