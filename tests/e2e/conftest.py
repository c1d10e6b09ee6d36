"""Browser tests: Debian's Chromium driven by Playwright against a live server.

Reusable pieces: `page` (a fresh browser context), `login_as(page, user)`
(password + the user's current TOTP through the real admin login form) and
`screenshot(page, name)` (saved under test-results/).
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from portal.models import User
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token
from verification.models import AuthenticatorDevice

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# tests make around it are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Every browser test also checks that the Content-Security-Policy refused nothing.
    refused: list[str] = []

    def note_refusal(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(f"{page.url}: {message.text}")

    page.on("console", note_refusal)
    yield page
    context.close()
    assert not refused, "\n".join(refused)


@pytest.fixture
def login_as() -> Callable[..., AuthenticatorDevice]:
    """Log in through the admin form; `token=` overrides the code (e.g. a wrong one, or "")."""

    def login(page: Page, user: User, *, token: str | None = None) -> AuthenticatorDevice:
        device = authenticator(user)
        page.goto("/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.fill("#id_otp_token", token if token is not None else current_token(device))
        page.click("input[type=submit]")
        return device

    return login


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
