"""A removal that keeps failing is shown to operators and can be retried, never dropped."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from policies.grants import grants_sweep
from policies.models import Entitlement, Provisioner, RiskTier
from tests.otp import otp_login
from tests.policies.conftest import grant_in_place

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business_hours")]


class Accepting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/grants"
    server.shutdown()


@pytest.fixture
def failing_removal(default_policy, security_admin, subject, manager, time_machine):
    """A webhook grant past its end whose system refuses connections."""
    entitlement = Entitlement.objects.create(
        name="Billing console",
        system="billing",
        owner=security_admin,
        tier=RiskTier.objects.get(level=2),
        max_minutes=60,
        provisioner=Provisioner.WEBHOOK,
        webhook_url="http://127.0.0.1:9/grants",  # the discard port: nothing listens
    )
    grant = grant_in_place(entitlement, subject, manager, minutes=10)
    time_machine.shift(timedelta(minutes=11))
    assert grants_sweep()["ended"] == 0
    return grant


def test_a_failing_removal_is_on_the_dashboard_and_in_the_filtered_changelist(
    client, security_admin, failing_removal
):
    otp_login(client, security_admin)
    home = client.get("/admin/").content.decode()
    assert 'class="vigil-broken">1</strong> access removals failing' in home
    assert "?attention=removal_failing" in home

    listed = client.get("/admin/policies/grant/?attention=removal_failing").content.decode()
    assert "Billing console" in listed and "127.0.0.1:9" in listed
    assert "Billing console" not in client.get("/admin/policies/grant/?attention=manual").content.decode()


def test_retrying_once_the_system_answers_ends_the_grant(client, security_admin, failing_removal, receiver):
    Entitlement.objects.filter(pk=failing_removal.entitlement_id).update(webhook_url=receiver)
    otp_login(client, security_admin)
    client.post(
        "/admin/policies/grant/", {"action": "retry_deprovision", "_selected_action": [failing_removal.pk]}
    )

    failing_removal.refresh_from_db()
    assert failing_removal.ended_at is not None and failing_removal.provisioning == "deprovisioned"
    assert "0 access removals failing" in client.get("/admin/").content.decode()
