"""Faults injected into a private Vigil (tests/services/stack.py): Redis stopped,
a worker killed mid-send, SMTP down, PostgreSQL restarted. Every request answers,
nothing is lost, nothing is sent twice, and the service comes back on its own."""

import fcntl
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.services.stack import (
    TIMINGS,
    PrivatePostgres,
    PrivateRedis,
    SmtpServer,
    Vigil,
    code_in,
    wait_for,
)

SWEEP = int(TIMINGS["VERIFICATION_SWEEP_SECONDS"])
VISIBILITY = int(TIMINGS["CELERY_VISIBILITY_TIMEOUT"])
# Long enough for a second send to show: two sweeps pass and what they enqueue runs.
QUIET = 2 * SWEEP + 1
DISPATCH = "verification.tasks.challenge_dispatch"


@pytest.fixture(scope="module")
def vigil(tmp_path_factory):
    workdir: Path = tmp_path_factory.mktemp("faults")
    with ExitStack() as cleanup, (Path(tempfile.gettempdir()) / "vigil-faults.lock").open("w") as lock:
        # One fault run at a time on a machine: runs would stop each other's cluster.
        fcntl.flock(lock, fcntl.LOCK_EX)
        postgres = PrivatePostgres()
        postgres.start()
        if not postgres.was_running:
            cleanup.callback(postgres.stop)
        broker = PrivateRedis(workdir)
        broker.start()
        cleanup.callback(broker.stop)
        smtp = SmtpServer()
        smtp.start()
        cleanup.callback(smtp.stop)
        stack = Vigil(workdir, postgres, broker, smtp)
        cleanup.callback(stack.stop_all)
        stack.install()
        stack.start_web()
        stack.start_worker()
        stack.start_beat()
        yield stack


def the_one_message(vigil: Vigil, ticket: str) -> str:
    messages = vigil.deliveries(ticket)
    assert len(messages) == 1, f"{len(messages)} messages for {ticket}"
    return messages[0]


def delivered_once(vigil: Vigil, ticket: str, *, timeout: float = 40) -> str:
    """Wait for the message about `ticket`, then for a quiet spell in which a second
    one would have shown; return the one message."""
    wait_for(lambda: vigil.deliveries(ticket), timeout=timeout, what=f"the message for {ticket}")
    time.sleep(QUIET)
    return the_one_message(vigil, ticket)


def test_with_redis_stopped_every_request_answers_and_each_code_goes_out_once_it_returns(vigil):
    vigil.broker.stop()
    try:
        opened = {}
        for number in range(6):
            ticket = f"FAULT-A-{number:02d}"
            case_id = vigil.open_case(ticket, subject=number)
            challenge = vigil.challenge(case_id, "email_otp" if number % 2 else "sms_otp")
            assert challenge["state"] == "queued"
            assert vigil.shown(case_id, challenge["id"])["state"] == "queued"
            opened[ticket] = challenge["id"]
    finally:
        vigil.broker.start()
    for ticket in opened:
        wait_for(lambda ticket=ticket: vigil.deliveries(ticket), timeout=60, what=f"the message for {ticket}")
    time.sleep(QUIET)
    for ticket, challenge_id in opened.items():
        assert vigil.answer(challenge_id, code_in(the_one_message(vigil, ticket))) == "passed"


def test_pool_processes_killed_mid_send_have_the_message_redelivered_and_the_code_goes_out_once(vigil):
    logs = vigil.log_sizes()
    vigil.smtp.mailbox.hold_next()
    case_id = vigil.open_case("FAULT-B-01", subject=6)
    challenge = vigil.challenge(case_id, "email_otp")
    wait_for(vigil.smtp.mailbox.holding.is_set, what="the worker to start sending")
    (interrupted,) = vigil.in_flight(DISPATCH, logs)
    vigil.kill_pool_processes()
    vigil.smtp.mailbox.release()
    # acks_late + reject_on_worker_lost: the worker puts the message back for a new pool process.
    wait_for(lambda: vigil.times_received(DISPATCH, interrupted, logs) == 2, what="the redelivery")
    message = delivered_once(vigil, "FAULT-B-01")
    assert vigil.answer(challenge["id"], code_in(message)) == "passed"


def test_a_worker_killed_mid_send_is_redelivered_after_the_visibility_timeout_and_sends_once(vigil):
    logs = vigil.log_sizes()
    vigil.smtp.mailbox.hold_next()
    case_id = vigil.open_case("FAULT-B-02", subject=7)
    challenge = vigil.challenge(case_id, "email_otp")
    wait_for(vigil.smtp.mailbox.holding.is_set, what="the worker to start sending")
    (unacknowledged,) = vigil.in_flight(DISPATCH, logs)
    vigil.kill_worker()
    vigil.smtp.mailbox.release()
    # The message waits in Redis, taken but never acknowledged; a worker started after the
    # visibility timeout takes it back.
    time.sleep(VISIBILITY + 1)
    vigil.start_worker()
    wait_for(lambda: vigil.times_received(DISPATCH, unacknowledged, logs) == 2, what="the redelivery")
    message = delivered_once(vigil, "FAULT-B-02")
    assert vigil.answer(challenge["id"], code_in(message)) == "passed"


def test_with_smtp_down_the_agent_sees_the_failure_and_the_code_goes_out_once_it_returns(vigil):
    vigil.console_login()
    vigil.smtp.stop()
    try:
        case_id = vigil.open_case("FAULT-C-01", subject=8)
        challenge = vigil.challenge(case_id, "email_otp")
        shown = wait_for(
            lambda: (found := vigil.shown(case_id, challenge["id"]))["delivery_error"] and found,
            what="the delivery failure",
        )
        assert shown["state"] == "queued"
        page = vigil.console.get(f"{vigil.base_url}/admin/console/case/{case_id}/", timeout=10)
        assert page.status_code == 200 and "delivery failed" in page.text

        def failures() -> int:
            response = vigil.auditor_api.get(
                f"{vigil.base_url}/api/v1/audit-events/",
                params={"verb": "challenge_delivery_failed", "limit": 100},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            return sum(event["data"]["challenge"] == challenge["id"] for event in response.json()["results"])

        wait_for(lambda: failures() >= 2, what="a retry")
    finally:
        vigil.smtp.start()
    message = delivered_once(vigil, "FAULT-C-01", timeout=60)
    shown = vigil.shown(case_id, challenge["id"])
    assert shown["state"] == "sent" and shown["delivery_error"] == ""
    page = vigil.console.get(f"{vigil.base_url}/admin/console/case/{case_id}/", timeout=10)
    assert "delivery failed" not in page.text
    assert vigil.answer(challenge["id"], code_in(message)) == "passed"


def assert_unavailable(response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "unavailable" and body["detail"], body


def test_a_postgres_restart_answers_503_in_the_error_shape_and_leaves_no_half_written_case(vigil):
    earlier = vigil.open_case("FAULT-D-00", subject=9)
    vigil.console_login()
    vigil.postgres.stop()
    try:
        assert_unavailable(vigil.try_open_case("FAULT-D-XX", subject=9))
        assert_unavailable(vigil.api.get(f"{vigil.base_url}/api/v1/verifications/{earlier}/", timeout=10))
        assert_unavailable(vigil.post(f"/api/v1/verifications/{earlier}/challenges/", method="sms_otp"))
        page = vigil.console.get(f"{vigil.base_url}/admin/console/case/{earlier}/", timeout=10)
        assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
        assert "try again" in page.text
        assert vigil.api.get(f"{vigil.base_url}/healthz", timeout=10).status_code == 503
    finally:
        vigil.postgres.start()

    # An agent keeps opening cases while the database restarts under them.
    answers: list[requests.Response] = []
    stop = threading.Event()

    def agent_at_work() -> None:
        while not stop.is_set():
            number = len(answers) + 1
            answers.append(vigil.try_open_case(f"FAULT-D-{number:03d}", subject=10 + number % 2))

    agent = threading.Thread(target=agent_at_work)
    agent.start()
    try:
        time.sleep(1)
        vigil.postgres.restart()
        restarted = len(answers)
        wait_for(lambda: any(r.status_code == 201 for r in answers[restarted:]), what="service to resume")
    finally:
        stop.set()
        agent.join(30)
    statuses = [response.status_code for response in answers]
    assert set(statuses) <= {201, 503} and 503 in statuses, statuses
    for response in answers:
        if response.status_code == 503:
            assert_unavailable(response)

    # Nothing half-written: every case stored has its audit trail, every 201 is stored.
    stored = dict(
        vigil.postgres.query(
            vigil.database,
            "SELECT c.id, count(e.id) FROM verification_verificationcase c LEFT JOIN audit_auditevent e "
            "ON e.target_type = 'verification.verificationcase' AND e.target_id = c.id::text "
            "AND e.verb = 'case_opened' WHERE c.ticket LIKE 'FAULT-D-%%' AND c.id <> %s GROUP BY c.id",
            earlier,
        )
    )
    assert set(stored.values()) == {1}
    assert {response.json()["id"] for response in answers if response.status_code == 201} <= set(stored)
    assert len(stored) <= len(answers)
    vigil.manage("verify_audit_chain")  # the hash chain held through appends cut short

    # And the worker is back too: a code still goes out, once.
    case_id = vigil.open_case("FAULT-D-END", subject=12)
    challenge = vigil.challenge(case_id, "sms_otp")
    message = delivered_once(vigil, "FAULT-D-END")
    assert vigil.answer(challenge["id"], code_in(message)) == "passed"
