"""The service suite: real PostgreSQL, real Redis, a real Celery worker.

Nothing here skips: an unreachable service fails the run, as CI requires.
"""

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from portal.celery import app


@pytest.fixture(scope="session", autouse=True)
def real_services_answer():
    assert settings.SETTINGS_MODULE == "portal.settings.services", (
        "run the service suite with --ds portal.settings.services (make test-services)"
    )
    assert connection.vendor == "postgresql", "the service suite runs on PostgreSQL (DATABASE_URL)"
    redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()


@pytest.fixture
def celery_worker(transactional_db):
    """A worker thread consuming from the real Redis broker, on the test database."""
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10
    ) as worker:
        yield worker
