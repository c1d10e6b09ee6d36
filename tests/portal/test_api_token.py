import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from portal.models import ApiToken
from portal.roles import Role

pytestmark = pytest.mark.django_db


def issue(username: str, capsys) -> str:
    call_command("issue_api_token", username)
    return capsys.readouterr().out.strip().splitlines()[-1]


def every_stored_value() -> str:
    """Every row of every table, as text: what a database dump would leak."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_issued_token_authenticates_and_only_its_hash_is_stored(client, agent, capsys):
    raw = issue(agent.username, capsys)
    stored = ApiToken.objects.get(user=agent)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in every_stored_value()
    assert AuditEvent.objects.filter(verb="api_token_issued", subject=agent.username).exists()
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 200
    assert response.json() == {"username": agent.username, "roles": [Role.AGENT.group_name]}
    stored.refresh_from_db()
    assert stored.last_used_at is not None


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token", "Token a b"])
def test_bad_tokens_get_401_in_the_error_shape(client, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "authentication_failed"


def test_a_token_of_an_inactive_user_is_refused(client, agent, capsys):
    raw = issue(agent.username, capsys)
    agent.is_active = False
    agent.save()
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_no_credentials_is_401(client):
    assert client.get("/api/v1/me/").status_code == 401
    assert client.get("/api/v1/me/").json()["code"] == "not_authenticated"


def test_revoked_token_no_longer_works(client, agent, capsys):
    raw = issue(agent.username, capsys)
    ApiToken.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401


def test_unknown_user_is_an_error():
    with pytest.raises(CommandError, match="no user"):
        call_command("issue_api_token", "ghost")
