"""Policy engine throughput and latency: 4 tiers, 8 actions, 20 rules.

Loads the default policy plus extra rules into PostgreSQL (database
`vigil_bench`, created if missing), then times:
  - warm decisions: the pure engine on a cached snapshot, one core;
  - cold: invalidate the cache and load the snapshot again from the database.

Usage: .venv/bin/python bench/policy_engine.py [--decisions 200000]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil_bench")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.default")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def load_policy(rule_count: int) -> None:
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
        signal = signals[n % len(signals)]
        RiskRule.objects.get_or_create(
            name=f"bench rule {n}",
            defaults=dict(
                signal=signal,
                effect=Effect.ESCALATE_TO,
                target_tier=tiers[n % len(tiers)],
                threshold=2 + n % 4,
                window_hours=24 * (1 + n % 3),
                channels=["phone", "chat"],
            ),
        )


def random_inputs(count: int, actions: list[str]) -> list:
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--rules", type=int, default=20)
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from policies.engine import decide
    from policies.snapshot import snapshot_current, snapshot_invalidate

    load_policy(args.rules)
    snapshot_invalidate()
    snapshot = snapshot_current()
    inputs = random_inputs(min(args.decisions, 20_000), sorted(snapshot.actions))

    latencies = []
    clock = time.perf_counter_ns
    started = clock()
    for i in range(args.decisions):
        data = inputs[i % len(inputs)]
        t0 = clock()
        decide(snapshot, data)
        latencies.append(clock() - t0)
    elapsed_s = (clock() - started) / 1e9

    cold = []
    for _ in range(20):
        snapshot_invalidate()
        t0 = clock()
        snapshot_current()
        cold.append((clock() - t0) / 1e6)

    latencies.sort()
    figures = {
        "decisions_per_s": round(args.decisions / elapsed_s),
        "p50_us": round(latencies[len(latencies) // 2] / 1000, 2),
        "p99_us": round(latencies[int(len(latencies) * 0.99)] / 1000, 2),
        "cold_ms": round(statistics.median(cold), 2),
    }
    print(
        f"policy: {len(snapshot.tiers)} tiers, {len(snapshot.actions)} actions, {len(snapshot.rules)} rules; "
        f"{args.decisions} decisions on one core; database {os.environ['DATABASE_URL'].rsplit('@', 1)[-1]}"
    )
    print(f"{'figure':<18}{'value':>14}  goal")
    print(f"{'decisions/s':<18}{figures['decisions_per_s']:>14,}  >= 20,000")
    print(f"{'p50 latency (us)':<18}{figures['p50_us']:>14}")
    print(f"{'p99 latency (us)':<18}{figures['p99_us']:>14}  <= 200")
    print(f"{'cold load (ms)':<18}{figures['cold_ms']:>14}  (median of 20 reloads after invalidation)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
