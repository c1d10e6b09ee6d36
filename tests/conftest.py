"""The standing cast of STYLE "Tests": agent, subject, manager, approver, auditor, outsider."""

import pytest

from policies.demo import seed_policy
from policies.snapshot import snapshot_invalidate
from portal.roles import Role
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def security_admin(db):
    return UserFactory(username="sec.admin", is_staff=True, roles=[Role.SECURITY_ADMIN])


@pytest.fixture
def agent(db):
    return UserFactory(username="agent", is_staff=True, roles=[Role.AGENT])


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", roles=[Role.MANAGER])


@pytest.fixture
def subject(db, manager):
    return UserFactory(username="subject", manager=manager)


@pytest.fixture
def approver(db):
    return UserFactory(username="approver", roles=[Role.APPROVER])


@pytest.fixture
def auditor(db):
    return UserFactory(username="auditor", is_staff=True, roles=[Role.AUDITOR])


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def default_policy(db):
    seed_policy()
    snapshot_invalidate()
    yield
    snapshot_invalidate()


@pytest.fixture(autouse=True)
def fresh_cache():
    """Cached figures (the dashboard's) must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
