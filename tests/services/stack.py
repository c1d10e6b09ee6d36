"""A private Vigil to break on purpose (tests/services/test_faults.py).

Its own PostgreSQL cluster (port 5433) and Redis (a spare port), a local SMTP server
that can be stopped or made to hold a message, and real processes pointed at them
through DATABASE_URL / REDIS_URL: gunicorn, a Celery worker and Celery beat. The
shared PostgreSQL (5432) and Redis (6379) are never stopped: others use them.
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from django_otp.oath import totp

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
AGENT, AUDITOR = "fault.agent", "fault.auditor"
SUBJECTS = 13

# Short enough for a test, in the order the settings require: lease > EMAIL_TIMEOUT.
TIMINGS = {
    "EMAIL_TIMEOUT": "3",
    "VERIFICATION_DELIVERY_LEASE_SECONDS": "6",
    "VERIFICATION_SWEEP_SECONDS": "2",
    "VERIFICATION_REDISPATCH_AFTER_SECONDS": "5",
    "CELERY_VISIBILITY_TIMEOUT": "4",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class PrivatePostgres:
    """A cluster of the machine's PostgreSQL, made once with trust auth on 127.0.0.1."""

    cluster, port = "vigilfaults", 5433
    TRUST_LOCAL = "host all postgres 127.0.0.1/32 trust"

    def __init__(self) -> None:
        self.version = max(os.listdir("/etc/postgresql"), key=int)
        config = Path(f"/etc/postgresql/{self.version}/{self.cluster}")
        if not config.exists():
            subprocess.run(
                [
                    *("pg_createcluster", self.version, self.cluster, "-p", str(self.port)),
                    *("--", "--auth-host=trust", "--auth-local=trust"),
                ],
                check=True,
                capture_output=True,
            )
        # A cluster made by hand with the default (password) authentication is trusted too.
        hba = config / "pg_hba.conf"
        if self.TRUST_LOCAL not in hba.read_text():
            hba.write_text(f"{self.TRUST_LOCAL}\n{hba.read_text()}")
            self._ctl("reload")
        self.was_running = self.running()

    def _ctl(self, action: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.cluster, action],
            capture_output=True,
        )

    def running(self) -> bool:
        return self._ctl("status").returncode == 0

    def accepting(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0

    def start(self) -> None:
        if not self.running():
            self._ctl("start").check_returncode()
        wait_for(self.accepting, what="the private PostgreSQL")

    def stop(self) -> None:
        self._ctl("stop").check_returncode()

    def restart(self) -> None:
        self._ctl("restart").check_returncode()
        wait_for(self.accepting, what="the private PostgreSQL")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def recreate(self, database: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')

    def query(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database)) as conn:
            return conn.execute(sql, params).fetchall()


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def up(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def start(self) -> None:
        subprocess.run(
            [
                *("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
                *("--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")),
            ],
            check=True,
        )
        wait_for(self.up, what="the private Redis")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        wait_for(lambda: not self.up(), what="the private Redis to stop")


class Mailbox:
    """aiosmtpd handler: what arrived, and a switch that holds the next message without
    an answer. A server takes a message only with its 250, so a held message whose
    sender was killed meanwhile is not delivered."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.holding = threading.Event()
        self._hold_next = False
        self._release = threading.Event()

    def hold_next(self) -> None:
        self.holding.clear()
        self._release.clear()
        self._hold_next = True

    def release(self) -> None:
        self._release.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._hold_next:
            self._hold_next = False
            self.holding.set()
            while not self._release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 held, not accepted"
        self.messages.append(envelope.content.decode("utf8", errors="replace"))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.port, self.mailbox = free_port(), Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class Vigil:
    """The private stack and its processes, driven over HTTP like any client."""

    def __init__(self, workdir: Path, postgres: PrivatePostgres, broker: PrivateRedis, smtp: SmtpServer):
        self.workdir, self.postgres, self.broker, self.smtp = workdir, postgres, broker, smtp
        self.database = "vigil_faults"
        self.sms_file = workdir / "sms.jsonl"
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        # Nothing inherited beyond the basics: the test run's own DATABASE_URL and settings
        # module point at the shared services.
        self.env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ} | {
            "DJANGO_SETTINGS_MODULE": "portal.settings.default",
            "DATABASE_URL": postgres.url(self.database),
            "REDIS_URL": broker.url,
            "SECRET_KEY": "fault-injection-only-" + "x" * 40,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DEBUG": "0",
            "HTTPS": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "VIGIL_VAR_DIR": str(workdir / "var"),
            "PORTAL_URL": self.base_url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "SMS_BACKEND": "file",
            "SMS_FILE_PATH": str(self.sms_file),
            # The agent here opens dozens of cases an hour on purpose: no flag to security.
            "VERIFICATION_AGENT_CASES_PER_HOUR_FLAG": "1000000",
            **TIMINGS,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api = requests.Session()
        self.auditor_api = requests.Session()
        self.console = requests.Session()

    # Processes ---------------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with self.log(name).open("ab") as log:
            # Its own session, so stopping it takes its children (pool processes) too.
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def install(self) -> None:
        """A fresh database with the default policy (its off-hours rule off: these processes
        run on the real clock), an agent, an auditor and subjects with old enough factors."""
        self.postgres.recreate(self.database)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        cast_out = self.manage("shell", "-c", f"from tests.services.stack import cast; cast({SUBJECTS})")
        members = json.loads(cast_out.strip().splitlines()[-1])
        self.totp_key = bytes.fromhex(members["totp_key"])
        self.api.headers["Authorization"] = f"Token {members['agent_token']}"
        self.auditor_api.headers["Authorization"] = f"Token {members['auditor_token']}"

    def start_web(self) -> None:
        self._spawn(
            "web",
            *("gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}"),
            *("--workers", "2", "--timeout", "30", "--no-control-socket", "--access-logfile", "-"),
        )
        wait_for(lambda: self._answers("/healthz"), what="gunicorn")

    def start_worker(self) -> None:
        name = f"worker{len(list(self.workdir.glob('worker*.log')))}"  # a log of its own
        self._spawn(
            name,
            # Two pool processes, so two copies of one task (a sweep and a retry) can race.
            *("celery", "-A", "portal", "worker", "--pool", "prefork", "--concurrency", "2"),
            *("--loglevel", "INFO", "--without-mingle", "--without-gossip", "-n", f"{name}@faults"),
        )
        self.worker = name
        wait_for(lambda: " ready." in self.log(name).read_text(), what=f"{name} ready")

    def start_beat(self) -> None:
        self._spawn("beat", "celery", "-A", "portal", "beat", "--loglevel", "INFO")

    def _answers(self, path: str) -> bool:
        try:
            requests.get(self.base_url + path, timeout=5)
            return True
        except requests.RequestException:
            return False

    def kill_pool_processes(self) -> None:
        """SIGKILL the worker's pool processes (the one sending among them), not the worker."""
        main = self.processes[self.worker].pid
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        assert children
        for child in children:
            os.kill(int(child), signal.SIGKILL)

    def kill_worker(self) -> None:
        """SIGKILL the whole worker, main process and pool, as a lost machine would."""
        process = self.processes.pop(self.worker)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()

    def log_sizes(self) -> dict[str, int]:
        return {path.stem: path.stat().st_size for path in self.workdir.glob("worker*.log")}

    def task_log(self, task: str, since: dict[str, int]) -> list[tuple[str, str]]:
        """(task id, what happened) for each line about `task` that any worker, dead or
        alive, logged after `since`: received, succeeded, retry, raised unexpected: <error>."""
        events = []
        for path in sorted(self.workdir.glob("worker*.log")):
            text = path.read_bytes()[since.get(path.stem, 0) :].decode(errors="replace")
            events += re.findall(
                rf"Task {re.escape(task)}\[([0-9a-f-]+)\] (received|succeeded|retry|raised unexpected: \w+)",
                text,
            )
        return events

    def in_flight(self, task: str, since: dict[str, int]) -> set[str]:
        events = self.task_log(task, since)
        return {task_id for task_id, what in events if what == "received"} - {
            task_id for task_id, what in events if what != "received"
        }

    def times_received(self, task: str, task_id: str, since: dict[str, int]) -> int:
        return self.task_log(task, since).count((task_id, "received"))

    # The service desk, over HTTP -----------------------------------------------------------

    def try_open_case(self, ticket: str, subject: int) -> requests.Response:
        """An account unlock for fault.subject<n>, asked over chat."""
        return self.post(
            "/api/v1/verifications/",
            subject=f"fault.subject{subject}",
            action="account_unlock",
            channel="chat",
            ticket=ticket,
        )

    def open_case(self, ticket: str, subject: int) -> int:
        response = self.try_open_case(ticket, subject)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def challenge(self, case_id: int, method: str) -> dict[str, Any]:
        response = self.post(f"/api/v1/verifications/{case_id}/challenges/", method=method)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def shown(self, case_id: int, challenge_id: int) -> dict[str, Any]:
        response = self.api.get(f"{self.base_url}/api/v1/verifications/{case_id}/", timeout=10)
        assert response.status_code == 200, response.text
        return next(item for item in response.json()["challenges"] if item["id"] == challenge_id)

    def answer(self, challenge_id: int, code: str) -> str:
        response = self.post(f"/api/v1/challenges/{challenge_id}/answer/", code=code)
        assert response.status_code == 200, response.text
        return str(response.json()["state"])

    def post(self, path: str, **body: Any) -> requests.Response:
        return self.api.post(self.base_url + path, json=body, timeout=15)

    def console_login(self) -> None:
        """The agent signs in to the admin with password and a code from their authenticator,
        once: a second code in the same 30 s would be refused as a replay."""
        if "sessionid" in self.console.cookies:
            return
        page = self.console.get(f"{self.base_url}/admin/login/", timeout=10)
        assert page.status_code == 200, page.text[:500]
        code = totp(self.totp_key)
        response = self.console.post(
            f"{self.base_url}/admin/login/",
            data={
                "csrfmiddlewaretoken": self.console.cookies["csrftoken"],
                "username": AGENT,
                "password": PASSWORD,
                "otp_token": f"{code:06d}",
            },
            headers={"Referer": f"{self.base_url}/admin/login/"},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, response.text[:2000]

    # What left the building ---------------------------------------------------------------

    def deliveries(self, ticket: str) -> list[str]:
        """Emails and texts that mention `ticket` (each case has its own)."""
        texts = []
        if self.sms_file.exists():
            texts = [json.loads(line)["body"] for line in self.sms_file.read_text().splitlines()]
        return [text for text in self.smtp.mailbox.messages + texts if ticket in text]


def code_in(message: str) -> str:
    found = re.search(r"(?:Your code is|Vigil code) (\d{6})", message)
    assert found, message[:500]
    return found[1]


def cast(subject_count: int) -> None:
    """Run by `manage.py shell` inside the private Vigil: prints the agent's authenticator
    key and API tokens for the agent and an auditor (as `issue_api_token` makes them)."""
    from datetime import timedelta

    import factory
    import time_machine
    from django.utils import timezone

    from policies.demo import seed_policy
    from policies.engine import Signal
    from policies.models import RiskRule
    from portal.models import ApiToken
    from portal.roles import Role
    from tests.factories import UserFactory
    from verification.factors import factor_enroll

    no_password = factory.django.Password(None)  # unusable, and no slow hashing
    seed_policy()
    RiskRule.objects.filter(signal=Signal.OFF_HOURS).update(enabled=False)
    agent = UserFactory(username=AGENT, is_staff=True, roles=[Role.AGENT])
    auditor = UserFactory(username=AUDITOR, is_staff=True, password=no_password, roles=[Role.AUDITOR])
    authenticator = factor_enroll(user=agent, method="totp").device
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        for number in range(subject_count):
            subject = UserFactory(
                username=f"fault.subject{number}", phone=f"+1415555{number:04d}", password=no_password
            )
            factor_enroll(user=subject, method="email")
            factor_enroll(user=subject, method="sms")
    members = {
        "totp_key": authenticator.bin_key.hex(),
        "agent_token": ApiToken.issue(agent)[1],
        "auditor_token": ApiToken.issue(auditor)[1],
    }
    print(json.dumps(members))
