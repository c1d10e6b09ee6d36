"""Security headers on every kind of page, the CSP our templates live with, staff session expiry."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token, otp_login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def me_login(client: Client, user) -> None:
    token = current_token(authenticator(user))
    credentials = {"username": user.username, "password": PASSWORD, "otp_token": token}
    response = client.post("/me/login/", credentials)
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.fixture
def as_agent(client, agent):
    otp_login(client, agent)
    return client


@pytest.fixture
def as_security_admin(client, security_admin):
    otp_login(client, security_admin)
    return client


@pytest.fixture
def as_subject(client, subject):
    me_login(client, subject)
    return client


@pytest.mark.parametrize(
    ("who", "url", "status"),
    [
        ("client", "/admin/login/", 200),
        ("as_security_admin", "/admin/", 200),
        ("as_security_admin", "/admin/policies/risktier/", 200),
        ("as_agent", "/admin/console/", 200),
        ("client", "/me/login/", 200),
        ("as_subject", "/me/", 200),
        ("client", "/verify/reset/not-a-token/", 410),
        ("client", "/healthz", 200),
        ("client", "/api/v1/me/", 401),
        ("as_agent", "/api/v1/me/", 200),
        ("client", "/api/schema/", 200),
        ("client", "/api/docs/", 200),
        ("client", "/api/docs/?script=", 200),
        ("client", "/no-such-page/", 404),
    ],
)
def test_every_kind_of_page_carries_the_security_headers(request, who, url, status):
    response = request.getfixturevalue(who).get(url)
    assert response.status_code == status
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "microphone=()" in response["Permissions-Policy"]
    policy = directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]


def test_swagger_ui_starts_from_a_script_file_not_an_inline_script(client):
    page = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script>\s*\S", page)
    [start_script] = re.findall(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', page)
    script = client.get(start_script.replace("&amp;", "&"))
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


TEMPLATE_DIRS = [ROOT / app / "templates" for app in ("portal", "policies", "verification", "audit")]
# Emails are read in a mail client, not served under our CSP.
PAGE_TEMPLATES = sorted(
    path
    for folder in TEMPLATE_DIRS
    for path in folder.rglob("*.html")
    if "email" not in path.relative_to(folder).parts[:-1]
)
TAG = re.compile(r"<[a-zA-Z][^>]*>")
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def test_the_template_scan_sees_our_pages():
    names = {path.name for path in PAGE_TEMPLATES}
    assert {"base.html", "me.html", "case.html", "page.html", "simulate.html"} <= names
    assert "challenge.html" not in {p.name for p in PAGE_TEMPLATES if "verification" in p.parts}


@pytest.mark.parametrize("template", PAGE_TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_a_script_the_csp_would_block(template):
    """script-src 'self' refuses inline <script> bodies, on*= handlers and javascript: links."""
    source = template.read_text()
    assert not INLINE_SCRIPT.search(source)
    for tag in TAG.findall(source):
        assert not EVENT_HANDLER.search(tag), tag
    assert "javascript:" not in source.lower()


def test_the_scan_catches_each_kind_of_inline_script():
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/static/x.js"></script>')
    assert not INLINE_SCRIPT.search('<script type="application/json" id="data">{}</script>')
    assert EVENT_HANDLER.search(TAG.findall('<button onclick="go()">')[0])
    assert not EVENT_HANDLER.search(TAG.findall('<input name="one" value="x">')[0])


def test_session_cookie_ends_with_the_browser(client, security_admin):
    device = authenticator(security_admin)
    response = client.post(
        "/admin/login/",
        {"username": security_admin.username, "password": PASSWORD, "otp_token": current_token(device)},
    )
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert (cookie["max-age"], cookie["expires"]) == ("", "")


IDLE = timedelta(seconds=settings.STAFF_SESSION_IDLE_SECONDS)


def test_staff_session_idle_past_the_limit_is_logged_out_and_audited(client, security_admin):
    with time_machine.travel(TUESDAY_NOON, tick=False) as traveller:
        otp_login(client, security_admin)
        assert client.get("/admin/").status_code == 200
        traveller.shift(IDLE + timedelta(seconds=1))
        response = client.get("/admin/", follow=True)
    assert response.redirect_chain[0][0].startswith("/admin/login/")
    assert "Your session expired" in response.content.decode()
    event = AuditEvent.objects.get(verb="session_expired")
    assert (event.actor, event.subject, event.outcome) == ("sec.admin", "sec.admin", "info")
    assert event.data["reason"] == "idle"
    assert event.data["idle_seconds"] == IDLE.total_seconds() + 1
    assert client.get("/admin/").status_code == 302


def test_staff_session_in_use_stays_open(client, security_admin):
    with time_machine.travel(TUESDAY_NOON, tick=False) as traveller:
        otp_login(client, security_admin)
        for _ in range(4):
            traveller.shift(IDLE - timedelta(seconds=5))
            assert client.get("/admin/").status_code == 200
    assert not AuditEvent.objects.filter(verb="session_expired").exists()


def test_a_page_left_refreshing_itself_does_not_keep_a_staff_session_open(client, security_admin):
    with time_machine.travel(TUESDAY_NOON, tick=False) as traveller:
        otp_login(client, security_admin)
        page = client.get("/me/").content.decode()
        assert 'content="5;url=?refreshed=1"' in page
        for _ in range(3):  # the page reloads itself; nobody is there
            traveller.shift(IDLE / 2)
            client.get("/me/?refreshed=1")
    assert AuditEvent.objects.get(verb="session_expired").data["reason"] == "idle"


def test_an_expired_staff_session_also_closes_the_api(client, agent):
    with time_machine.travel(TUESDAY_NOON, tick=False) as traveller:
        otp_login(client, agent)
        assert client.get("/api/v1/me/").status_code == 200
        traveller.shift(IDLE + timedelta(seconds=1))
        response = client.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert response.json()["code"]
    assert AuditEvent.objects.filter(verb="session_expired", actor="agent").count() == 1


def test_staff_session_ends_at_its_lifetime_even_when_in_use(client, security_admin, settings):
    settings.SESSION_COOKIE_AGE = 3 * settings.STAFF_SESSION_IDLE_SECONDS
    with time_machine.travel(TUESDAY_NOON, tick=False) as traveller:
        otp_login(client, security_admin)
        for _ in range(3):
            traveller.shift(IDLE - timedelta(seconds=5))
            assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(seconds=20))
        assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.get(verb="session_expired").data["reason"] == "lifetime"


def test_idle_limit_is_for_staff_only(as_subject):
    with time_machine.travel(datetime.now(tz=UTC) + IDLE * 2, tick=False):
        assert as_subject.get("/me/").status_code == 200
    assert not AuditEvent.objects.filter(verb="session_expired").exists()
