"""The audit trail at scale, on PostgreSQL.

1. Recreate the database `vigil_audit_bench` (BENCH_DATABASE_URL), migrate.
2. Generate 1,000,000 hash-chained events (a year of service-desk stories)
   and COPY them in, with a progress bar; the chain head is set to match.
3. Time filtered queries through the real interfaces, in process: the API
   `/api/v1/audit-events/` and the admin changelist (OTP login), p50/p95.
4. Export every row as CSV through the admin in a separate process and
   report its time and peak memory (max RSS).
5. Append with 8 writer processes through audit.services.record for a fixed
   time, then verify the whole chain; run pgbench's single-row INSERT with the
   same 8 clients (and 1) on the same database for comparison.

Usage: .venv/bin/python bench/audit_scale.py [--events 1000000] [--writers 8] [--append-seconds 20]
The last line is one JSON object: query_p95_ms, export_s, export_peak_mb,
append_per_s, append_vs_pgbench.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from glob import glob
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil_audit_bench")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("VIGIL_VAR_DIR", str(Path(tempfile.gettempdir()) / "vigil-audit-bench"))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.default")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ["HTTPS"] = "0"
os.environ["LOG_LEVEL"] = "WARNING"

COLUMNS = (
    "seq", "at", "actor", "subject", "verb", "outcome", "tier", "channel", "action",
    "target_type", "target_id", "ip", "request_id", "data", "prev_hash", "hash",
)  # fmt: skip
AGENTS = [f"agent{n:03d}" for n in range(200)]
SUBJECTS = [f"emp{n:05d}" for n in range(5000)]
ACTIONS = (
    ["password_reset"] * 5 + ["mfa_reset"] * 3 + ["device_enrollment", "account_unlock", "role_escalation"]
)
CHANNELS = ["phone"] * 5 + ["chat"] * 2 + ["email", "walk_in", "portal"]
AUDITOR, PASSWORD = "bench.auditor", "bench-auditor-password-123"


def log(message: str) -> None:
    print(message, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5):7.1f} ms  p95 {percentile(samples, 0.95):7.1f} ms"


def recreate_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_setup() -> None:
    import django

    django.setup()


# --- 2. generation -----------------------------------------------------------------


def stories(rng: random.Random) -> Iterator[tuple[str, str, str, dict[str, Any], str]]:
    """(verb, outcome, actor, fields, target id) of one case after another, with
    logins between them: the mix a service desk produces."""
    case_id = 0
    while True:
        case_id += 1
        agent, subject = rng.choice(AGENTS), rng.choice(SUBJECTS)
        case = {
            "subject": subject,
            "action": rng.choice(ACTIONS),
            "channel": rng.choice(CHANNELS),
            "tier": rng.choice((1, 2, 2, 2, 3, 3, 4)),
        }
        target = str(case_id)
        yield "login", "success", agent, {"subject": agent}, ""
        yield "case_opened", "success", agent, case, target
        roll = rng.random()
        if roll < 0.05:
            yield "case_blocked", "blocked", agent, case, target
            continue
        yield "challenge_sent", "success", "system", case, target
        if roll < 0.70:
            yield "challenge_passed", "success", agent, case, target
            yield "case_verified", "success", "", case, target
            if rng.random() < 0.97:
                yield "action_executed", "success", agent, case, target
            else:
                yield "action_blocked", "blocked", rng.choice(AGENTS), case, target
        elif roll < 0.82:
            for _ in range(3):
                yield "challenge_failed", "failure", agent, case, target
            yield "case_failed", "failure", "system", case, target
        elif roll < 0.83:
            yield "push_reported", "blocked", subject, case, target
        else:
            yield "case_expired", "info", "system", case, target
        if rng.random() < 0.1:
            yield "login_failed", "failure", subject, {"subject": subject}, ""


def chained_rows(count: int, start: datetime, end: datetime, chain: dict[str, str]) -> Iterator[str]:
    """`count` rows in COPY text format, each hashed by AuditEvent.compute_hash itself
    (so verify_chain agrees); `chain["head"]` ends as the last hash."""
    from tqdm import tqdm

    from audit.models import GENESIS_HASH, AuditEvent

    rng = random.Random(6)
    step = (end - start) / count
    row = AuditEvent(prev_hash=GENESIS_HASH)
    source = stories(rng)
    for seq in tqdm(range(1, count + 1), desc="generate + COPY", unit="row", unit_scale=True, mininterval=2):
        verb, outcome, actor, fields, target = next(source)
        row.seq, row.at, row.verb, row.outcome, row.actor = seq, start + step * seq, verb, outcome, actor
        row.subject = fields.get("subject", "")
        row.tier, row.channel, row.action = (
            fields.get("tier"),
            fields.get("channel", ""),
            fields.get("action", ""),
        )
        row.target_type = "verification.verificationcase" if target else ""
        row.target_id = target
        row.ip = f"10.{seq % 250}.{seq % 199}.{seq % 97}"
        row.request_id = hashlib.md5(str(seq).encode(), usedforsecurity=False).hexdigest()
        row.data = {"ticket": f"INC-{seq // 7}", "purpose": "service_desk"} if verb == "case_opened" else {}
        row.hash = row.compute_hash()
        values = [
                str(row.seq), row.at.isoformat(timespec="microseconds"), row.actor, row.subject, row.verb,
                row.outcome, "\\N" if row.tier is None else str(row.tier), row.channel, row.action,
                row.target_type, row.target_id, row.ip, row.request_id,
                json.dumps(row.data, separators=(",", ":")), row.prev_hash, row.hash,
            ]  # fmt: skip
        yield "\t".join(values) + "\n"
        row.prev_hash = row.hash
    chain["head"] = row.prev_hash


def load(count: int) -> tuple[datetime, datetime]:
    """Stream the generated rows into COPY in 1 MB blocks, set the chain head,
    VACUUM ANALYZE. Returns the span of the events."""
    import psycopg

    end = datetime.now(UTC) - timedelta(hours=1)
    start = end - timedelta(days=365)
    chain: dict[str, str] = {}
    with psycopg.connect(DATABASE_URL) as conn:
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                block: list[str] = []
                for line in chained_rows(count, start, end, chain):
                    block.append(line)
                    if len(block) == 5000:
                        copy.write("".join(block))
                        block = []
                copy.write("".join(block))
            cursor.execute(
                "UPDATE audit_chainhead SET hash = %s, count = %s WHERE id = 1", [chain["head"], count]
            )
        conn.commit()
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_auditevent")
    return start, end


# --- 3. queries ----------------------------------------------------------------------


def auditor_client() -> Any:
    """An auditor logged in through the OTP admin form, as a person would."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client
    from django_otp.oath import totp

    from portal.roles import Role
    from verification.factors import factor_enroll

    user, _ = get_user_model().objects.get_or_create(username=AUDITOR, defaults={"is_staff": True})
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=Role.AUDITOR.group_name))
    device = factor_enroll(user=user, method="totp").device
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    client = Client()
    response = client.post("/admin/login/", {"username": AUDITOR, "password": PASSWORD, "otp_token": code})
    assert response.status_code == 302, response.content[:500]
    return client


class SqlClock:
    """Adds up the time spent in the database (connection.execute_wrapper)."""

    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ms += (time.perf_counter() - started) * 1000


def time_get(client: Any, url: str, params: dict[str, str]) -> tuple[float, float, Any]:
    """(whole request ms, its SQL ms, the response)."""
    from django.db import connection

    clock = SqlClock()
    started = time.perf_counter()
    with connection.execute_wrapper(clock):
        response = client.get(url, params)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, params, response.status_code, response.content[:300])
    return elapsed, clock.ms, response


def query_cases(start: datetime, end: datetime) -> dict[str, list[tuple[str, dict[str, str]]]]:
    middle = start + (end - start) / 2
    month = (middle.replace(day=1), (middle.replace(day=1) + timedelta(days=32)).replace(day=1))
    api = [
        ("newest", {}),
        ("verb", {"verb": "case_blocked"}),
        ("outcome", {"outcome": "failure"}),
        ("subject", {"subject": "emp01234"}),
        ("actor", {"actor": "agent042"}),
        ("tier+channel", {"tier": "4", "channel": "chat"}),
        ("action+outcome", {"action": "mfa_reset", "outcome": "blocked"}),
        ("a month, mid-year", {"since": month[0].date().isoformat(), "until": month[1].date().isoformat()}),
        (
            "rare verb since",
            {"verb": "push_reported", "since": (end - timedelta(days=90)).date().isoformat()},
        ),
        ("until, old", {"until": (start + timedelta(days=30)).date().isoformat()}),
    ]
    admin = [
        ("newest", {}),
        ("verb", {"verb": "case_blocked"}),
        ("outcome", {"outcome__exact": "failure"}),
        ("subject", {"subject": "emp01234"}),
        ("search actor", {"q": "agent042"}),
        ("last 7 days", {"period": "7d"}),
        ("last month, blocked", {"period": "last_month", "outcome__exact": "blocked"}),
        ("month drill-down", {"at__year": str(middle.year), "at__month": str(middle.month)}),
        ("tier+channel", {"tier": "4", "channel": "chat"}),
    ]
    return {"api": api, "admin": admin}


def measure_queries(start: datetime, end: datetime, repeats: int) -> dict[str, Any]:
    client = auditor_client()
    urls = {"api": "/api/v1/audit-events/", "admin": "/admin/audit/auditevent/"}
    results: dict[str, Any] = {}
    log(f"  {'':32} {'whole request':>29}   {'its SQL':>28}")
    for surface, cases in query_cases(start, end).items():
        requests: list[float] = []
        sql: list[float] = []
        for name, params in cases:
            time_get(client, urls[surface], params)  # warm the plan and the cache
            runs = [time_get(client, urls[surface], params)[:2] for _ in range(repeats)]
            requests += [whole for whole, _ in runs]
            sql += [spent for _, spent in runs]
            log(f"  {surface:5} {name:26} {spread([w for w, _ in runs])}   {spread([s for _, s in runs])}")
        results[surface], results[f"{surface}_sql"] = requests, sql
    # Deep pages: follow the cursor up to 200 pages into one verb.
    pages: list[tuple[float, float]] = []
    url, query = "/api/v1/audit-events/", {"verb": "case_opened"}
    for _ in range(200):
        whole, spent, response = time_get(client, url, query)
        pages.append((whole, spent))
        url, query = response.json()["next"], {}
        if url is None:
            break
    label = f"cursor pages 1-{len(pages)}"
    log(f"  api   {label:26} {spread([w for w, _ in pages])}   {spread([s for _, s in pages])}")
    results["api"] += [whole for whole, _ in pages]
    results["api_sql"] += [spent for _, spent in pages]
    started = time.perf_counter()
    metrics = client.get("/api/v1/metrics/").json()
    results["metrics_ms"] = (time.perf_counter() - started) * 1000
    opened = metrics["cases"]["opened"]
    log(f"  api   {'metrics, last 30 days':26} {results['metrics_ms']:7.1f} ms ({opened:,} cases opened)")
    whole, spent, _ = time_get(client, "/admin/", {"days": "90"})
    log(f"  admin {'dashboard, 90 days, cold':26} {whole:7.1f} ms (SQL {spent:.1f} ms)")
    return results


# --- 4. export (child process) -----------------------------------------------------


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM): ru_maxrss would also count the parent's
    memory at fork time, which exec does not reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_child() -> None:
    """Stream the whole changelist as CSV; print a JSON line with the figures."""
    django_setup()
    client = auditor_client()
    baseline_mb = peak_rss_mb()
    started = time.perf_counter()
    response = client.get("/admin/audit/auditevent/export/csv/")
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": elapsed, "rows": lines - 1, "bytes": size, "peak_mb": peak_mb,
                      "baseline_mb": baseline_mb}))  # fmt: skip


def measure_export() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--export-child"], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"the export process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- 5. appends --------------------------------------------------------------------


class CaseRef:
    """What audit.services.record reads of `target=` (a verification case here)."""

    _meta = SimpleNamespace(label_lower="verification.verificationcase")

    def __init__(self, pk: str) -> None:
        self.pk = pk


def writer(index: int, start: Any, stop_at: Any, counts: Any) -> None:
    from django.db import connections

    from audit.models import Outcome
    from audit.services import record

    connections.close_all()  # a fresh connection of this process's own
    rng = random.Random(index)
    start.wait()
    done = 0
    while time.time() < stop_at.value:
        record(
            "case_opened",
            target=CaseRef(f"w{index}-{done}"),  # type: ignore[arg-type]
            outcome=Outcome.SUCCESS,
            actor=f"agent{index:03d}",
            subject=rng.choice(SUBJECTS),
            tier=2,
            channel="phone",
            action="password_reset",
            data={"ticket": f"W{index}-{done}", "purpose": "service_desk"},
        )
        done += 1
    counts[index] = done
    connections.close_all()


def measure_appends(writers: int, seconds: float) -> tuple[float, int]:
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    start, stop_at = context.Event(), context.Value("d", 0.0)
    counts = context.Array("l", writers)
    processes = [context.Process(target=writer, args=(i, start, stop_at, counts)) for i in range(writers)]
    for process in processes:
        process.start()
    time.sleep(2)  # let every writer connect before the clock starts
    began = time.time()
    stop_at.value = began + seconds
    start.set()
    for process in processes:
        process.join()
    elapsed = time.time() - began
    total = sum(counts)
    return total / elapsed, total


def pgbench(clients: int, seconds: int) -> float:
    import psycopg

    binary = shutil.which("pgbench") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if binary is None:
        raise SystemExit("pgbench not found (install PostgreSQL's client tools)")
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_insert "
            "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_insert (payload) VALUES ('single row');\n")
    host = re.match(
        r"postgres(?:ql)?://(?P<user>[^@/]+)@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>.+)", DATABASE_URL
    )
    assert host, "BENCH_DATABASE_URL must look like postgres://user@host:port/db"
    done = subprocess.run(
        [binary, "-n", "-h", host["host"], "-p", host["port"], "-U", host["user"],
         "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), "-f", script.name, host["db"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(script.name)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    assert match, done.stdout
    return float(match.group(1))


def timed(label: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    log(f"{label}: {time.perf_counter() - started:.1f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--append-seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=20, help="Timed runs of each query.")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child()
        return

    log(f"database {DATABASE_URL}, {args.events:,} events, {os.cpu_count()} CPUs")
    recreate_database()
    django_setup()
    from django.core.management import call_command

    from audit.services import verify_chain

    call_command("migrate", verbosity=0)
    # Production settings serve hashed static names; the admin pages need the manifest.
    call_command("collectstatic", interactive=False, verbosity=0)
    start, end = timed("generate, hash, COPY, VACUUM ANALYZE", lambda: load(args.events))

    log(f"queries ({args.repeats} runs each, after one warm-up):")
    queries = measure_queries(start, end, args.repeats)
    for surface in ("api", "admin"):
        whole, spent = spread(queries[surface]), spread(queries[f"{surface}_sql"])
        log(f"{surface:5} all filters: request {whole}, SQL {spent}")
    requests = queries["api"] + queries["admin"]
    sql = queries["api_sql"] + queries["admin_sql"]

    export = timed("CSV export of every row (child process)", measure_export)
    log(
        f"export: {export['rows']:,} rows, {export['bytes'] / 1e6:.0f} MB in {export['seconds']:.1f} s, "
        f"peak RSS {export['peak_mb']:.0f} MB (after login, before export: {export['baseline_mb']:.0f} MB)"
    )

    per_s, appended = measure_appends(args.writers, args.append_seconds)
    log(f"appends: {appended:,} by {args.writers} processes in {args.append_seconds:.0f} s = {per_s:.0f}/s")
    report = timed("verify the whole chain", verify_chain)
    verdict = "intact" if report.ok else f"BROKEN: {report.reason}"
    log(f"chain after appends: {verdict}, {report.count:,} events")
    seconds = max(5, round(args.append_seconds / 2))
    pg8 = pgbench(args.writers, seconds)
    pg1 = pgbench(1, seconds)
    log(f"pgbench single-row INSERT: {pg8:.0f} tps with {args.writers} clients, {pg1:.0f} tps with 1")
    log(f"appends / pgbench: {per_s / pg8:.1%} of {args.writers}-client, {per_s / pg1:.1%} of 1-client")
    if not report.ok:
        raise SystemExit("the chain is broken after the concurrent appends")
    print(
        json.dumps(
            {
                "query_p95_ms": round(percentile(sql, 0.95), 1),
                "request_p95_ms": round(percentile(requests, 0.95), 1),
                "api_request_p95_ms": round(percentile(queries["api"], 0.95), 1),
                "admin_request_p95_ms": round(percentile(queries["admin"], 0.95), 1),
                "metrics_ms": round(queries["metrics_ms"], 1),
                "export_s": round(export["seconds"], 1),
                "export_peak_mb": round(export["peak_mb"], 1),
                "append_per_s": round(per_s, 1),
                "pgbench_insert_per_s": round(pg8, 1),
                "append_vs_pgbench": round(per_s / pg8, 3),
                "chain_ok": report.ok,
                "events": report.count,
            }
        )
    )


if __name__ == "__main__":
    main()
