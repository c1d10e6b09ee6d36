import io
from typing import Any

import qrcode
from django.core.management.base import BaseCommand

from audit.context import acting_as
from portal.demo import demo_seed


class Command(BaseCommand):
    help = "Load the demo organisation: roles, people with factors (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-qr", action="store_true", help="Do not draw the TOTP QR code.")

    def handle(self, *args: Any, no_qr: bool = False, **options: Any) -> None:
        with acting_as("seed_demo"):
            login = demo_seed()
        self.stdout.write("demo people (all share the demo password, kept in var/demo-password),")
        self.stdout.write("each with an authenticator app you can add by URI:")
        for username, uri in login.people_uris.items():
            self.stdout.write(f"  {username:<15} {uri}")
        if not no_qr:
            qr = qrcode.QRCode(border=1)
            qr.add_data(login.otpauth_uri)
            art = io.StringIO()
            qr.print_ascii(out=art, invert=True)
            self.stdout.write(art.getvalue())
        self.stdout.write("admin login: http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  username: {login.username}")
        self.stdout.write(f"  password: {login.password}")
        self.stdout.write("  TOTP (scan the QR code above or add this URI to an authenticator app):")
        self.stdout.write(login.otpauth_uri)
