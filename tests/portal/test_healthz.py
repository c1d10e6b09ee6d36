import pytest

from portal.celery import app

pytestmark = pytest.mark.django_db


def test_healthy_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["db"] == "ok"
    assert response.json()["broker"] == "ok"


def test_503_when_the_broker_is_down(client, monkeypatch):
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_transport_options", {})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["db"] == "ok"
