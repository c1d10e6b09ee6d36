import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from audit.services import verify_chain
from audit.tasks import audit_chain_verify
from portal.celery import app

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_task_enqueued_on_commit_runs_in_the_worker_and_lands_in_postgres(celery_worker):
    with transaction.atomic():
        transaction.on_commit(audit_chain_verify.delay)
        # Nothing may be sent before the commit.
        assert not AuditEvent.objects.filter(verb="audit_chain_verified").exists()
    assert wait_for(lambda: AuditEvent.objects.filter(verb="audit_chain_verified").exists())
    event = AuditEvent.objects.get(verb="audit_chain_verified")
    assert event.outcome == "success" and event.actor == "system"
    assert connection.vendor == "postgresql"


@pytest.mark.django_db
def test_healthz_is_503_when_redis_is_unreachable(client, monkeypatch):
    assert client.get("/healthz").status_code == 200
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["db"] == "ok"


# Every writer waits for the same moment after its (slow) start-up, so the appends
# really overlap instead of running one process after the other.
APPEND_SCRIPT = """
import time
import django
django.setup()
from audit.services import record
time.sleep(max(0.0, {start_at} - time.time()))
for i in range({count}):
    record("concurrent_append", actor="writer{writer}", data={{"i": i}})
"""


def test_concurrent_appends_from_processes_keep_one_chain(transactional_db):
    writers, per_writer = 4, 50
    test_db = connection.settings_dict["NAME"]
    base_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.services",
        "DATABASE_URL": f"{base_url}/{test_db}",
    }
    start_at = time.time() + 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_SCRIPT.format(count=per_writer, writer=n, start_at=start_at)],
            cwd=ROOT,
            env=env,
        )
        for n in range(writers)
    ]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * writers
    report = verify_chain()
    assert report.ok, report.reason
    assert report.count == AuditEvent.objects.count() == writers * per_writer
    actors = list(AuditEvent.objects.order_by("seq").values_list("actor", flat=True))
    assert all(actors.count(f"writer{n}") == per_writer for n in range(writers))
    # The writers took turns: without overlap this test would prove nothing.
    assert sum(a != b for a, b in itertools.pairwise(actors)) > writers
