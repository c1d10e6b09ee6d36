from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.context import acting_as
from audit.services import record
from portal.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for a user. Only its hash is stored: copy it now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not user.is_active:
            raise CommandError(f"{username!r} is inactive")
        with acting_as("issue_api_token"), transaction.atomic():
            token, raw = ApiToken.issue(user)
            record("api_token_issued", subject=user, data={"prefix": token.prefix})
        self.stdout.write(f"token for {username} (prefix {token.prefix}); it is shown once:")
        self.stdout.write(raw)
