"""The authorisation matrix (tests/portal/authorization_table.py), run against the portal.

Each role gets one standing world; every row is requested inside a savepoint that is
rolled back, so one row's effect (a cancelled case, a revoked grant) never changes the
next row's answer. A URL that no row lists fails `test_every_url_is_in_the_table`."""

from typing import Any

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from portal.models import User
from portal.roles import Role
from tests.conftest import PASSWORD
from tests.otp import authenticator, current_token, otp_login
from tests.portal.authorization_table import (
    ABSENT,
    ADMIN_MODELS,
    ADMIN_PAGES,
    API,
    LOGIN,
    ME_LOGIN,
    OK,
    PAGES,
    ROLES,
    Row,
    model_rows,
)
from tests.portal.conftest import World

pytestmark = pytest.mark.django_db


def _walk(patterns: list[Any], prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^") if prefix else str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.append(route)
    return routes


def all_rows() -> list[Row]:
    return [*API, *PAGES, *ADMIN_PAGES, *(r for label in ADMIN_MODELS for r in model_rows(label))]


class AnyId(dict):
    def __missing__(self, key: str) -> str:
        return "1"


def test_every_url_is_in_the_table():
    """A new URL (or a newly registered admin model) must be added to the matrix."""
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS), "add the model's row to ADMIN_MODELS"
    listed = {resolve(r.path.format_map(AnyId()).split("?")[0]).route for r in all_rows()}
    unlisted = sorted(set(_walk(get_resolver().url_patterns)) - listed)
    assert unlisted == [], "URLs with no row in tests/portal/authorization_table.py"


# Running the rows ---------------------------------------------------------------


def _fill(text: str, ids: dict[str, Any], user: User | None) -> str:
    if "{totp}" in text:
        return current_token(authenticator(user)) if user else ""
    return text.format(**ids)


def _outcome(response: Any, expected: int | str, method: str) -> bool:
    location = response.get("Location", "")
    if expected == LOGIN:
        return response.status_code == 302 and location.startswith("/admin/login/")
    if expected == ABSENT:
        return response.status_code == 302 and location == "/admin/"
    if expected == ME_LOGIN:
        return response.status_code == 302 and location.startswith("/me/login/")
    if expected == OK:
        if method == "GET":
            return response.status_code == 200
        return response.status_code == 200 or (response.status_code == 302 and "login" not in location)
    return response.status_code == expected


def run_rows(
    client: Client, rows: list[Row], role: str, ids: dict[str, Any], user: User | None, **extra: Any
):
    """Each row in a savepoint rolled back after it; the mismatches, readable."""
    column = ROLES.index(role)
    mismatches = []
    for method, path, body, expected in rows:
        url = path.format(**ids)
        data = {key: _fill(value, ids, user) for key, value in body.items()}
        cache.clear()  # throttles count per test; here a test is a role's whole column
        with transaction.atomic():
            response = client.get(url, **extra) if method == "GET" else client.post(url, data, **extra)
            transaction.set_rollback(True)
        if not _outcome(response, expected[column], method):
            got = f"{response.status_code} {response.get('Location', '')}".strip()
            mismatches.append(f"{method} {url}: expected {expected[column]}, got {got}")
    return mismatches


def _first_objects() -> dict[str, int]:
    """`{app_model}` of the table: each registered model's first object in the world."""
    firsts = {}
    for model in admin.site._registry:
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        assert first is not None, f"the world has no {model._meta.label_lower} to open"
        firsts[model._meta.label_lower.replace(".", "_")] = first
    return firsts


def _logged_in(role: str, world: World) -> tuple[Client, User | None]:
    client = Client(raise_request_exception=False)
    user = world.cast.get(role)
    if user is None:
        return client, None
    if user.is_staff:
        otp_login(client, user)
    else:  # the admin refuses non-staff; they log in on their own page, password + OTP
        response = client.post(
            "/me/login/",
            {
                "username": user.username,
                "password": PASSWORD,
                "otp_token": current_token(authenticator(user)),
            },
        )
        assert response.status_code == 302, response.content.decode()[:500]
    return client, user


@pytest.mark.parametrize("role", ROLES)
def test_api_matrix(world, role):
    client = Client(raise_request_exception=False)
    user = world.cast.get(role)
    extra = {}
    if user is not None:
        extra["HTTP_AUTHORIZATION"] = f"Token {world.tokens[role]}"
    mismatches = run_rows(client, API, role, world.ids, user, **extra)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role", ROLES)
def test_pages_and_admin_matrix(world, role):
    client, user = _logged_in(role, world)
    model_pages = [r for label in ADMIN_MODELS for r in model_rows(label)]
    ids = world.ids | _first_objects()
    mismatches = run_rows(client, [*PAGES, *ADMIN_PAGES, *model_pages], role, ids, user)
    assert not mismatches, "\n".join(mismatches)


def test_every_role_is_in_the_cast(world):
    roles_in_cast = {r for r in Role if any(u.has_role(r) for u in world.cast.values())}
    assert roles_in_cast == set(Role)
