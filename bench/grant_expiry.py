"""Grants with one shared deadline, ended by two Celery worker processes on
PostgreSQL + Redis, with beat running the grant sweeper.

Round "on time": each grant's grant_expire task is queued with eta=expires_at,
as an approval queues it; the lag of a grant is ended_at - expires_at, ended_at
being written by the service that deprovisions it (group membership removed,
request closed, chain-hashed audit row, notices queued).
Round "restart": the workers take their ETA tasks, are stopped (warm shutdown)
before the deadline and started again `--outage` seconds after it; the tasks
they held and the sweeper catch up. restart_max_s is restart → last grant ended.
In both rounds the bench checks permissions (GrantAwareModelBackend, a user
fresh from the database each time) of random beneficiaries; a check that
began at or after the deadline and passed is a late authorisation.

Usage: .venv/bin/python bench/grant_expiry.py [--grants 10000] [--lead 60] [--outage 30]
Last line: one JSON object with lag_p50_s, lag_p99_s, lag_max_s, revocations_per_s,
restart_max_s, late_authorisations.
"""

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil_bench_grants")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
SECRET = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - a throwaway database
PERMISSION = "policies.view_riskrule"
ENTITLEMENTS_PER_ROUND = 10
REPORTS_PER_MANAGER = 50
QUEUE = "celery"  # the default queue; every task of the app goes there
POLL_SECONDS = 0.5
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f} s] {message}", flush=True)


def prepare(env: dict[str, str]) -> None:
    """A fresh database with the default policy."""
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(DB_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from policies.demo import seed_policy

    call_command("migrate", verbosity=0)
    seed_policy()


@dataclass
class Round:
    """One round's grants: their own entitlements and groups, so its rows are easy to find."""

    name: str
    entitlement_ids: list[int]
    grant_ids: list[int]
    user_ids: list[int]
    deadline: datetime | None = None

    def grants(self) -> Any:
        from policies.models import Grant

        return Grant.objects.filter(entitlement_id__in=self.entitlement_ids)


def make_round(name: str, count: int, *, email: bool) -> Round:
    """Approved, provisioned grants as the services leave them, written in bulk:
    managers ask for their reports, one grant per beneficiary, memberships in place."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.utils import timezone

    from policies.models import AccessRequest, Entitlement, Grant, RequestState, RiskTier
    from portal.models import User

    now = timezone.now()
    owner = User.objects.create(username=f"{name}.owner", email=f"{name}.owner@bench.test")
    app_label, codename = PERMISSION.split(".")
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    tier = RiskTier.objects.get(level=2)
    entitlements = []
    for n in range(ENTITLEMENTS_PER_ROUND):
        group = Group.objects.create(name=f"{name} group {n}")
        group.permissions.add(permission)
        entitlements.append(
            Entitlement.objects.create(
                name=f"{name} entitlement {n}",
                system="bench",
                owner=owner,
                tier=tier,
                max_minutes=120,
                group=group,
            )
        )
    unusable = make_password(None)

    def address(who: str) -> str:
        return f"{who}@bench.test" if email else ""

    managers = User.objects.bulk_create(
        User(username=f"{name}.mgr{m}", email=address(f"{name}.mgr{m}"), password=unusable)
        for m in range(math.ceil(count / REPORTS_PER_MANAGER))
    )
    users = User.objects.bulk_create(
        (
            User(
                username=f"{name}.user{i}",
                email=address(f"{name}.user{i}"),
                password=unusable,
                manager=managers[i // REPORTS_PER_MANAGER],
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    requests = AccessRequest.objects.bulk_create(
        (
            AccessRequest(
                requester=user.manager,
                beneficiary=user,
                entitlement=entitlements[i % ENTITLEMENTS_PER_ROUND],
                justification="bench",
                duration_minutes=60,
                state=RequestState.ACTIVE,
                tier_level=3,
                approvals_required=2,
                created_at=now,
                respond_by=now + timedelta(hours=72),
                decided_at=now,
            )
            for i, user in enumerate(users)
        ),
        batch_size=2000,
    )
    grants = Grant.objects.bulk_create(
        (
            Grant(
                request=request,
                user=request.beneficiary,
                entitlement=request.entitlement,
                starts_at=now,
                expires_at=now + timedelta(hours=1),  # the round sets the shared deadline
                provisioning=Grant.Provisioning.PROVISIONED,
                # "Ends soon" went out a quarter of an hour before; this deadline is a minute away.
                expiry_notice_sent_at=now,
            )
            for request in requests
        ),
        batch_size=2000,
    )
    Membership = User.groups.through
    Membership.objects.bulk_create(
        (Membership(user_id=grant.user_id, group_id=grant.entitlement.group_id) for grant in grants),
        batch_size=5000,
    )
    return Round(
        name=name,
        entitlement_ids=[e.pk for e in entitlements],
        grant_ids=[g.pk for g in grants],
        user_ids=[u.pk for u in users],
    )


def schedule(round_: Round, lead: float) -> float:
    """Give every grant of the round the same deadline and queue grant_expire at it,
    as the approval does. Returns the seconds the queueing took."""
    from django.utils import timezone

    from policies.tasks import grant_expire
    from portal.celery import app

    round_.deadline = deadline = timezone.now() + timedelta(seconds=lead)
    started = time.perf_counter()
    round_.grants().update(expires_at=deadline)
    with app.producer_or_acquire() as producer:
        for pk in round_.grant_ids:
            grant_expire.apply_async((pk,), eta=deadline, producer=producer)
    if timezone.now() >= deadline:
        raise SystemExit(f"queueing took past the deadline; raise --lead above {lead}")
    return time.perf_counter() - started


@dataclass
class Checks:
    """Permission checks of random beneficiaries, counted by whether they ran before
    or after the deadline of their round."""

    before: int = 0
    passed_before: int = 0
    after: int = 0
    late: int = 0
    after_on_live_membership: int = 0
    by_round: dict[str, int] = field(default_factory=dict)

    def sample(self, round_: Round) -> None:
        from django.utils import timezone

        from portal.models import User

        assert round_.deadline is not None
        user_id = random.choice(round_.user_ids)
        began = timezone.now()
        member = User.groups.through.objects.filter(user_id=user_id).exists()
        allowed = User.objects.get(pk=user_id).has_perm(PERMISSION)
        ended = timezone.now()
        if ended < round_.deadline:
            self.before += 1
            self.passed_before += allowed
        elif began >= round_.deadline:  # a check straddling the deadline proves nothing either way
            self.after += 1
            self.late += allowed
            self.after_on_live_membership += member
            self.by_round[round_.name] = self.by_round.get(round_.name, 0) + allowed


def queue_depth(client: Any) -> tuple[int, int]:
    """(waiting in the queue, taken by a worker and not yet acknowledged)."""
    return int(client.llen(QUEUE)), int(client.hlen("unacked"))


def wait_checking(round_: Round, checks: Checks, until: Any, timeout: float, interval: float) -> None:
    """Sample permission checks until `until()` is true; fail after `timeout` seconds."""
    give_up = time.monotonic() + timeout
    next_poll = 0.0
    while True:
        if time.monotonic() >= next_poll:
            if until():
                return
            next_poll = time.monotonic() + POLL_SECONDS
        if time.monotonic() > give_up:
            raise SystemExit(f"round {round_.name}: not done within {timeout} s")
        checks.sample(round_)
        time.sleep(interval)


def lag_figures(round_: Round) -> dict[str, float]:
    assert round_.deadline is not None
    rows = list(round_.grants().values_list("expires_at", "ended_at"))
    lags = sorted((ended - expires).total_seconds() for expires, ended in rows)
    span = (max(ended for _, ended in rows) - round_.deadline).total_seconds()
    return {
        "p50": lags[len(lags) // 2],
        "p99": lags[min(int(len(lags) * 0.99), len(lags) - 1)],
        "max": lags[-1],
        "per_s": len(lags) / span if span > 0 else math.inf,
    }


class Workers:
    def __init__(self, env: dict[str, str], count: int, concurrency: int) -> None:
        self.env, self.count, self.concurrency = env, count, concurrency
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        from portal.celery import app

        self.procs = [
            subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/celery"),
                    "-A",
                    "portal",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    str(self.concurrency),
                    "--hostname",
                    f"bench{n}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=self.env,
            )
            for n in range(self.count)
        ]
        for _ in range(120):
            if len(app.control.ping(timeout=0.5)) >= self.count:
                return
        raise SystemExit("the workers did not answer a ping within a minute")

    def stop(self) -> None:
        """Warm shutdown: running tasks finish, tasks held for later go back to Redis."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=10000, help="grants per round")
    parser.add_argument("--lead", type=float, default=60, help="seconds from queueing to the deadline")
    parser.add_argument("--outage", type=float, default=30, help="seconds the workers stay down past it")
    parser.add_argument("--workers", type=int, default=2, help="celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--sweep-seconds", type=int, default=5, help="GRANT_SWEEP_SECONDS for beat")
    parser.add_argument("--check-interval", type=float, default=0.05, help="pause between permission checks")
    parser.add_argument(
        "--no-email",
        action="store_true",
        help="people without an email address, so no notices are written or sent (what notices cost)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up a round after this long")
    args = parser.parse_args()

    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings.default",
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),  # a throwaway database
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "GRANT_SWEEP_SECONDS": str(args.sweep_seconds),
        # Notices are rendered and handed to a backend, which drops them: no SMTP server here.
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    started = time.perf_counter()
    prepare(env)
    on_time = make_round("ontime", args.grants, email=not args.no_email)
    restart = make_round("restart", args.grants, email=not args.no_email)
    say(f"prepared 2 x {args.grants} grants in {time.perf_counter() - started:.1f} s")

    from django.utils import timezone

    child_env = {**os.environ, **env}
    workers = Workers(child_env, args.workers, args.concurrency)
    checks = Checks()
    schedule_dir = tempfile.TemporaryDirectory(prefix="vigil-bench-beat-")
    beat = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "portal",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(Path(schedule_dir.name) / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=child_env,
    )
    try:
        workers.start()
        say(f"{args.workers} workers answer")

        # Round 1: the ETA tasks fire at the deadline.
        queued_s = schedule(on_time, args.lead)
        say(f"on time: queued {args.grants} ETA tasks in {queued_s:.1f} s; deadline in {args.lead} s")
        assert on_time.deadline is not None
        wait_checking(
            on_time, checks, lambda: timezone.now() >= on_time.deadline, args.timeout, args.check_interval
        )
        held_at_deadline = args.grants - queue_depth(broker)[0]
        say(f"on time: deadline; {held_at_deadline} ETA tasks held by workers")
        wait_checking(
            on_time,
            checks,
            lambda: not on_time.grants().filter(ended_at=None).exists(),
            args.timeout,
            args.check_interval,
        )
        first = lag_figures(on_time)
        say(
            f"on time: all ended; lag p50 {first['p50']:.2f} s, p99 {first['p99']:.2f} s, "
            f"max {first['max']:.2f} s, {first['per_s']:.1f} ended/s"
        )
        ended_at = timezone.now()
        wait_checking(on_time, checks, lambda: queue_depth(broker) == (0, 0), args.timeout, 0.1)
        drained_s = (timezone.now() - ended_at).total_seconds()
        say(f"on time: queue drained {drained_s:.1f} s later")

        # Round 2: the workers hold the ETA tasks and are down over the deadline.
        queued_s = schedule(restart, args.lead)
        say(f"restart: queued {args.grants} ETA tasks in {queued_s:.1f} s; deadline in {args.lead} s")
        assert restart.deadline is not None
        wait_checking(
            restart,
            checks,
            lambda: queue_depth(broker)[0] == 0 or timezone.now() >= restart.deadline - timedelta(seconds=5),
            args.timeout,
            args.check_interval,
        )
        say(f"restart: {queue_depth(broker)[0]} tasks still in the queue; stopping the workers")
        workers.stop()
        stopped_before_s = (restart.deadline - timezone.now()).total_seconds()
        if stopped_before_s <= 0:
            raise SystemExit("the workers took until the deadline to stop; raise --lead")
        restored = queue_depth(broker)[0]
        say(f"restart: workers stopped {stopped_before_s:.1f} s before the deadline, {restored} in the queue")
        back_at = restart.deadline + timedelta(seconds=args.outage)
        wait_checking(restart, checks, lambda: timezone.now() >= back_at, args.timeout, args.check_interval)
        restarted_at = timezone.now()
        workers.start()
        boot_s = (timezone.now() - restarted_at).total_seconds()
        say(f"restart: workers answer again after {boot_s:.1f} s")
        wait_checking(
            restart,
            checks,
            lambda: not restart.grants().filter(ended_at=None).exists(),
            args.timeout,
            args.check_interval,
        )
        second = lag_figures(restart)
        restart_max_s = (restart.deadline - restarted_at).total_seconds() + second["max"]
    finally:
        workers.stop()
        beat.terminate()
        try:
            beat.wait(timeout=30)
        except subprocess.TimeoutExpired:
            beat.kill()
        schedule_dir.cleanup()

    from audit.models import AuditEvent

    audited = AuditEvent.objects.filter(verb="grant_expired").count()
    print(
        f"grant expiry: {args.grants} grants per round with one deadline; PostgreSQL + Redis, "
        f"{args.workers} workers x {args.concurrency} processes, beat sweep every {args.sweep_seconds} s"
    )
    print(f"{'round':<10}{'lag p50 s':>10}{'p99 s':>9}{'max s':>9}{'ended/s':>10}{'late auth':>11}")
    for round_, figures in ((on_time, first), (restart, second)):
        print(
            f"{round_.name:<10}{figures['p50']:>10.2f}{figures['p99']:>9.2f}{figures['max']:>9.2f}"
            f"{figures['per_s']:>10.1f}{checks.by_round.get(round_.name, 0):>11}"
        )
    print(
        f"on time: {held_at_deadline}/{args.grants} ETA tasks held by workers at the deadline; "
        f"notices drained {drained_s:.1f} s after the last grant ended"
    )
    print(
        f"restart: workers stopped {stopped_before_s:.1f} s before the deadline, {restored} messages in "
        f"the queue, restarted {args.outage:.0f} s after it (answering {boot_s:.1f} s later); "
        f"restart → last grant ended {restart_max_s:.1f} s "
        f"(goal <= {args.sweep_seconds + 10})"
    )
    print(
        f"permission checks: {checks.before} before a deadline ({checks.passed_before} passed), "
        f"{checks.after} after ({checks.after_on_live_membership} while the membership was still there), "
        f"{checks.late} passed late (goal 0); grant_expired audit rows {audited}/{2 * args.grants}"
    )
    figures = {
        "lag_p50_s": round(first["p50"], 3),
        "lag_p99_s": round(first["p99"], 3),
        "lag_max_s": round(first["max"], 3),
        "revocations_per_s": round(first["per_s"], 1),
        "restart_max_s": round(restart_max_s, 3),
        "late_authorisations": checks.late,
    }
    print(
        f"lag p99 {figures['lag_p99_s']} s (goal <= 5) · restart max {figures['restart_max_s']} s "
        f"(goal <= {args.sweep_seconds + 10}) · late authorisations {figures['late_authorisations']} (goal 0)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
