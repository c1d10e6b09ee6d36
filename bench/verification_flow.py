"""The whole service-desk flow over HTTP against gunicorn + PostgreSQL + Redis + a
Celery worker, next to a trivial authenticated DRF endpoint measured in the same run.

Per flow: open a case, challenge an email code, wait for it at a local SMTP server,
answer it, execute the action. Prints flows/s, p50/p95/p99 per step, each step's
mean over the trivial endpoint's mean, and the delivery latency (challenge POST →
message at the SMTP server).

Usage: .venv/bin/python bench/verification_flow.py [--flows 200] [--clients 4]
Last line: one JSON object with flows_per_s, step_ratio_max, delivery_p95_ms.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil_bench_flow")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SECRET = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - a throwaway database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """SMTP sink: remembers when each code arrived, by recipient."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, str]] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        body = envelope.content.decode("utf8", errors="replace")
        code = re.search(r"Your code is (\d{6})", body)
        if code:
            with self.lock:
                for rcpt in envelope.rcpt_tos:
                    self.arrived[rcpt] = (now, code.group(1))
        return "250 OK"


def prepare(env: dict[str, str], subjects: int) -> tuple[str, list[str]]:
    """Fresh database, bench policy (no clock-dependent rule), agent token, subjects with email factors."""
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(DB_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(env)
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone
    from django_otp.plugins.otp_email.models import EmailDevice

    from policies.demo import seed_policy
    from policies.models import RiskRule
    from portal.models import ApiToken, User
    from portal.roles import Role

    call_command("migrate", verbosity=0)
    seed_policy()
    # The bench must not depend on the hour it runs at, nor trip velocity limits.
    RiskRule.objects.filter(signal__in=["off_hours", "velocity", "requester_not_subject"]).update(
        enabled=False
    )
    agent = User.objects.create(username="bench.agent", is_staff=True)
    agent.groups.set([Group.objects.get(name=Role.AGENT.group_name)])
    _, token = ApiToken.issue(agent)
    names = []
    month_ago = timezone.now() - timedelta(days=30)
    for n in range(subjects):
        user = User.objects.create(username=f"caller{n}", email=f"caller{n}@bench.test")
        EmailDevice.objects.create(user=user, name="Email", confirmed=True)
        names.append(user.username)
    EmailDevice.objects.update(created_at=month_ago)
    return token, names


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, float]:
        started = time.perf_counter()
        self.conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=self.headers
        )
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        return response.status, json.loads(data or b"{}"), elapsed


def run_flow(client: Client, inbox: Inbox, subject: str, timings: dict[str, list[float]]) -> None:
    status, case, t = client.call(
        "POST",
        "/api/v1/verifications/",
        {"subject": subject, "action": "account_unlock", "channel": "chat", "ticket": "B"},
    )
    assert status == 201, case
    timings["open_case"].append(t)
    sent_at = time.perf_counter()
    status, challenge, t = client.call(
        "POST", f"/api/v1/verifications/{case['id']}/challenges/", {"method": "email_otp"}
    )
    assert status == 201, challenge
    timings["challenge"].append(t)
    address = f"{subject}@bench.test"
    deadline = time.monotonic() + 30
    while address not in inbox.arrived:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no code for {subject}")
        time.sleep(0.005)
    arrived, code = inbox.arrived[address]
    timings["delivery"].append(arrived - sent_at)
    status, answer, t = client.call("POST", f"/api/v1/challenges/{challenge['id']}/answer/", {"code": code})
    assert answer.get("state") == "passed", answer
    timings["answer"].append(t)
    status, _, t = client.call("GET", f"/api/v1/verifications/{case['id']}/")
    timings["get_case"].append(t)
    status, executed, t = client.call("POST", f"/api/v1/verifications/{case['id']}/execute/", {})
    assert executed.get("state") == "executed", executed
    timings["execute"].append(t)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--trivial", type=int, default=1000)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    smtp_port, web_port = free_port(), free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings.default",
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),  # a throwaway database
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING",
        "VERIFICATION_AGENT_CASES_PER_HOUR_FLAG": "1000000",
        # One token drives every flow: the per-caller abuse limits would measure themselves.
        "THROTTLE_CHALLENGE_CREATE": "1000000/hour",
        "THROTTLE_CHALLENGE_ANSWER": "1000000/hour",
    }
    token, subjects = prepare(env, args.flows)
    child_env = {**os.environ, **env}
    subprocess.run(
        [sys.executable, "-c", "import redis,sys; redis.Redis.from_url(sys.argv[1]).flushdb()", REDIS_URL],
        check=True,
    )
    procs = [
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "3",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=child_env,
        ),
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=child_env,
        ),
    ]
    try:
        for _ in range(100):
            try:
                if Client(web_port, token).call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        client = Client(web_port, token)
        for _ in range(50):
            client.call("GET", "/api/v1/me/")  # warm up
        # The trivial endpoint runs under the same number of concurrent clients as the flows.
        trivial_local = threading.local()

        def trivial_call(_: int) -> float:
            if not hasattr(trivial_local, "client"):
                trivial_local.client = Client(web_port, token)
            return trivial_local.client.call("GET", "/api/v1/me/")[2]

        with ThreadPoolExecutor(args.clients) as pool:
            trivial = list(pool.map(trivial_call, range(args.trivial)))

        timings: dict[str, list[float]] = {
            k: [] for k in ("open_case", "challenge", "delivery", "answer", "get_case", "execute")
        }
        run_flow(client, inbox, subjects[0], {k: [] for k in timings})  # warm the worker
        started = time.perf_counter()
        local = threading.local()

        def one_flow(i: int) -> None:
            if not hasattr(local, "client"):  # one keep-alive connection per client thread
                local.client = Client(web_port, token)
            run_flow(local.client, inbox, subjects[i], timings)

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(one_flow, range(1, args.flows)))
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        smtp.stop()

    trivial_mean = statistics.mean(trivial)
    print(
        f"verification flow over HTTP: gunicorn (3 workers) + PostgreSQL + Redis + 1 worker; "
        f"{args.flows - 1} flows, {args.clients} clients"
    )
    print(f"{'step':<12}{'mean ms':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'x trivial':>11}")
    print(
        f"{'trivial':<12}{trivial_mean * 1000:>9.2f}{pct(trivial, 0.5):>9.2f}{pct(trivial, 0.95):>9.2f}"
        f"{pct(trivial, 0.99):>9.2f}{1:>11.2f}"
    )
    ratios = {}
    for step, values in timings.items():
        ratio = statistics.mean(values) / trivial_mean
        if step != "delivery":
            ratios[step] = ratio
        print(
            f"{step:<12}{statistics.mean(values) * 1000:>9.2f}{pct(values, 0.5):>9.2f}"
            f"{pct(values, 0.95):>9.2f}{pct(values, 0.99):>9.2f}{ratio:>11.2f}"
        )
    figures = {
        "flows_per_s": round((args.flows - 1) / wall, 2),
        "step_ratio_max": round(max(ratios.values()), 2),
        "delivery_p95_ms": round(pct(timings["delivery"], 0.95), 1),
    }
    print(
        f"flows/s {figures['flows_per_s']} · largest step/trivial {figures['step_ratio_max']} "
        f"({max(ratios, key=ratios.__getitem__)}; goal <= 3) · delivery p95 {figures['delivery_p95_ms']} ms "
        f"(goal <= 500)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
