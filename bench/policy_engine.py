"""Policy engine throughput and latency: 4 tiers, 8 actions, 20 rules.

Loads the default policy plus extra rules into PostgreSQL (database
`vigil_bench_policy`, or BENCH_DATABASE_URL; created if missing), then, on one
core, times what a request pays once its signals are gathered:
  - warm: `decide(snapshot_current(), input)`, the snapshot cached in the process
    (throughput from an uninstrumented loop, latency from a timed one);
  - cold: the first decision after an invalidation, which reloads the
    snapshot from the database.

Usage: .venv/bin/python bench/policy_engine.py [--decisions 200000] [--rules 20]
Prints a table, then one JSON line: decisions_per_s, p50_us, p99_us, cold_ms.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil_bench_policy")
SECRET = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - a throwaway database
COLD_ROUNDS = 20


def ensure_database() -> None:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(DB_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def load_policy(rule_count: int) -> None:
    """The default policy, topped up to `rule_count` rules that apply to every action."""
    from django.core.management import call_command

    from policies.demo import seed_policy
    from policies.engine import Effect, Signal
    from policies.models import RiskRule, RiskTier

    call_command("migrate", verbosity=0)
    seed_policy()
    tiers = list(RiskTier.objects.order_by("level"))
    signals = [
        Signal.SUBJECT_PRIVILEGED,
        Signal.REQUESTER_NOT_SUBJECT,
        Signal.CONTACT_CHANNEL,
        Signal.VELOCITY,
        Signal.RECENT_FAILED_CASES,
        Signal.FACTOR_RECENTLY_ENROLLED,
    ]
    for n in range(RiskRule.objects.count(), rule_count):
        RiskRule.objects.get_or_create(
            name=f"bench rule {n}",
            defaults=dict(
                signal=signals[n % len(signals)],
                effect=Effect.ESCALATE_TO,
                target_tier=tiers[n % len(tiers)],
                threshold=2 + n % 4,
                window_hours=24 * (1 + n % 3),
                channels=["phone", "chat"],
            ),
        )


def random_inputs(count: int, actions: list[str]) -> list[Any]:
    """A week of calls at any hour, with a realistic spread of signals."""
    from policies.engine import PolicyInput

    rng = random.Random(7)
    base = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    inputs = []
    for _ in range(count):
        at = base + timedelta(minutes=rng.randrange(7 * 24 * 60))
        inputs.append(
            PolicyInput(
                action=rng.choice(actions),
                channel=rng.choice(["phone", "chat", "email", "walk_in", "portal"]),
                at=at,
                subject_privileged=rng.random() < 0.2,
                requester_is_subject=rng.random() < 0.7,
                newest_factor_enrolled_at=at - timedelta(days=rng.randrange(60)),
                contact_changed_at=None if rng.random() < 0.5 else at - timedelta(days=rng.randrange(60)),
                recent_case_times=tuple(
                    at - timedelta(hours=rng.randrange(72)) for _ in range(rng.randrange(5))
                ),
                recent_failed_case_times=tuple(
                    at - timedelta(hours=rng.randrange(72)) for _ in range(rng.randrange(2))
                ),
            )
        )
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--rules", type=int, default=20)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = DB_URL
    os.environ.setdefault("SECRET_KEY", SECRET)
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.default")
    ensure_database()
    import django

    django.setup()
    from policies.engine import decide
    from policies.snapshot import snapshot_current, snapshot_invalidate

    load_policy(args.rules)
    snapshot_invalidate()
    snapshot = snapshot_current()
    inputs = random_inputs(min(args.decisions, 20_000), sorted(snapshot.actions))
    blocked = sum(decide(snapshot, data).blocked for data in inputs)

    clock = time.perf_counter_ns
    wall, cpu = clock(), time.process_time_ns()
    for i in range(args.decisions):
        decide(snapshot_current(), inputs[i % len(inputs)])
    wall, cpu = clock() - wall, time.process_time_ns() - cpu

    latencies = []
    for i in range(args.decisions):
        data = inputs[i % len(inputs)]
        started = clock()
        decide(snapshot_current(), data)
        latencies.append(clock() - started)
    latencies.sort()

    cold = []
    for i in range(COLD_ROUNDS):
        snapshot_invalidate()
        started = clock()
        decide(snapshot_current(), inputs[i])
        cold.append((clock() - started) / 1e6)

    figures = {
        "decisions_per_s": round(args.decisions / (wall / 1e9)),
        "p50_us": round(latencies[len(latencies) // 2] / 1000, 2),
        "p99_us": round(latencies[int(len(latencies) * 0.99)] / 1000, 2),
        "cold_ms": round(statistics.median(cold), 2),
    }
    print(
        f"policy: {len(snapshot.tiers)} tiers, {len(snapshot.actions)} actions, {len(snapshot.rules)} rules; "
        f"{args.decisions:,} decisions ({blocked * 100 // len(inputs)}% blocked), one thread; "
        f"load average {os.getloadavg()[0]:.2f}; database {DB_URL.rsplit('@', 1)[-1]}"
    )
    print(f"{'figure':<24}{'value':>12}  goal")
    print(f"{'decisions/s (wall)':<24}{figures['decisions_per_s']:>12,}  >= 20,000")
    print(f"{'decisions/s (CPU time)':<24}{round(args.decisions / (cpu / 1e9)):>12,}")
    print(f"{'p50 latency (us)':<24}{figures['p50_us']:>12}")
    print(f"{'p99 latency (us)':<24}{figures['p99_us']:>12}  <= 200")
    print(f"{'cold decision (ms)':<24}{figures['cold_ms']:>12}  after invalidation, median of {COLD_ROUNDS}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
