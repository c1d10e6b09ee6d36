"""A database that is away answers 503, never 500: in the API's error shape under /api/,
a plain page elsewhere. Against a real PostgreSQL restart: tests/services/test_faults.py."""

from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client


def database_away(*args, **kwargs):
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def browser_with_a_session() -> Client:
    browser = Client(raise_request_exception=False)
    browser.cookies["sessionid"] = "a" * 32
    return browser


def test_an_api_call_while_the_database_is_away_is_a_503_in_the_error_shape(agent, client, monkeypatch):
    client.force_login(agent)
    monkeypatch.setattr("portal.api.verification.cases_visible_to", database_away)
    response = client.get("/api/v1/verifications/1/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["code"] == "unavailable" and response.json()["detail"]


def test_a_page_whose_session_cannot_be_read_is_a_plain_503(db, monkeypatch):
    monkeypatch.setattr(SessionStore, "load", database_away)
    response = browser_with_a_session().get("/me/")
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")
    assert b"try again" in response.content


def test_an_api_call_whose_session_cannot_be_read_is_a_503_in_the_error_shape(db, monkeypatch):
    monkeypatch.setattr(SessionStore, "load", database_away)
    response = browser_with_a_session().get("/api/v1/me/challenges/")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_any_other_error_is_still_a_500(db, monkeypatch):
    monkeypatch.setattr(SessionStore, "load", lambda self: 1 / 0)
    response = browser_with_a_session().get("/me/")
    assert response.status_code == 500
