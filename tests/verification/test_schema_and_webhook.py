import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from verification.models import VerificationCase

pytestmark = pytest.mark.django_db


def test_openapi_schema_describes_the_verification_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in (
        "/api/v1/verifications/",
        "/api/v1/verifications/{case_id}/challenges/",
        "/api/v1/challenges/{challenge_id}/answer/",
        "/api/v1/verifications/{case_id}/execute/",
        "/api/v1/me/challenges/",
        "/api/v1/me/challenges/{challenge_id}/",
    ):
        assert path in paths
    assert client.get("/api/docs/").status_code == 200


@pytest.fixture
def idp(settings):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(b"idp-secret", body, hashlib.sha256).hexdigest()
            received.append(
                (json.loads(body), hmac.compare_digest(expected, self.headers["X-Vigil-Signature"]))
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.ACTION_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    settings.ACTION_WEBHOOK_SECRET = "idp-secret"
    yield received
    server.shutdown()


def test_webhook_executor_posts_a_signed_payload_and_records_delivery(
    api, api_as, subject, enrolled, default_policy, idp, django_capture_on_commit_callbacks
):
    subject.is_privileged = False
    case = api.post(
        "/api/v1/verifications/",
        {"subject": subject.username, "action": "data_export", "channel": "walk_in", "ticket": "CHG-1"},
        format="json",
    ).json()
    assert case["requirements"]["factors"] == 2
    for method in ("push", "totp"):
        created = api.post(
            f"/api/v1/verifications/{case['id']}/challenges/", {"method": method}, format="json"
        ).json()
        if method == "push":
            api_as(subject).post(
                f"/api/v1/me/challenges/{created['id']}/",
                {"decision": "approve", "number": created["match_number"]},
                format="json",
            )
        else:
            from django_otp.oath import totp

            device = enrolled["totp"].device
            code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
            api.post(f"/api/v1/challenges/{created['id']}/answer/", {"code": code}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        executed = api.post(f"/api/v1/verifications/{case['id']}/execute/", {}, format="json")
    assert executed.json()["result"]["delivery"] == "queued"
    payload, signed = idp[-1]
    assert signed and payload["action"] == "data_export" and payload["ticket"] == "CHG-1"
    assert VerificationCase.objects.get(pk=case["id"]).execution_result["delivery"] == "delivered"
