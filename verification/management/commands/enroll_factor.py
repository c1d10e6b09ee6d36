from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.context import acting_as
from verification.factors import ENROLLERS, EnrolmentError, factor_enroll


class Command(BaseCommand):
    help = "Enrol a factor for a user (operator bootstrap). Prints what the user must keep."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("method", choices=sorted(ENROLLERS))

    def handle(self, *args: Any, username: str, method: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        try:
            with acting_as("enroll_factor"):
                enrolment = factor_enroll(user=user, method=method)
        except EnrolmentError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"enrolled {method} for {username} ({enrolment.device.persistent_id})")
        for line in enrolment.secrets_to_show:
            self.stdout.write(line)
