"""The evidence bundle: one zip an auditor hands over, which proves itself.

events.jsonl          the period's events, every field, in chain order
chain.json            the whole chain's verification result, and the hashes that
                      anchor the period's first and last event in it
policy_versions.json  the policy version in force when the period began, every
                      change in it, and the versions that decided its cases
metrics.json          the figures of audit.metrics for the period
manifest.json         SHA-256 and size of each file above
README.txt            how to check the bundle without Vigil
"""

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.db.models import Count
from django.db.models.fields.json import KT
from django.utils import timezone

from audit.export import CHUNK_SIZE, default_fields, json_default, json_line
from audit.metrics import CASE_OPENED, metrics_summary
from audit.models import AuditEvent
from audit.periods import Period
from audit.selectors import chain_length, events_between
from audit.services import ChainReport, verify_chain

Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]

README = """Vigil evidence bundle

Period: {since} (inclusive) to {until} (exclusive); {count} events.
Chain verified at {verified_at}: {verdict}.

Check it without Vigil:
1. manifest.json lists the SHA-256 of every other file; recompute them.
2. In events.jsonl (one JSON object a line, oldest first) each event's hash is
     sha256(prev_hash + canonical)
   where canonical is the JSON object of the fields
     seq, at, actor, subject, verb, outcome, tier, channel, action,
     target_type, target_id, ip, request_id, data
   serialised with sorted keys and no whitespace (Python:
   json.dumps(fields, sort_keys=True, separators=(",", ":"))), `at` as
   written in the file. Each event's prev_hash is the previous event's hash.
3. chain.json gives the hash before the first event ("anchor") and the hash of
   the last; compare them with a checkpoint kept outside Vigil
   (manage.py audit_checkpoint) to show nothing before or inside the period
   was rewritten.
"""


@dataclass(frozen=True)
class EvidenceSummary:
    path: Path
    events: int
    chain: ChainReport


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, default=json_default, indent=2, sort_keys=True, ensure_ascii=False).encode()


def _event_ref(event: AuditEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "id": event.pk,
        "seq": event.seq,
        "at": event.at,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _policy_versions(period: Period, last_seq: int) -> dict[str, Any]:
    changes = AuditEvent.objects.filter(verb="policy_changed", seq__lte=last_seq)
    before = changes.filter(at__lt=period.since).order_by("-seq").first()
    during = changes.filter(at__gte=period.since, at__lt=period.until).order_by("seq")
    decided = (
        events_between(period.since, period.until)
        .filter(verb=CASE_OPENED, seq__lte=last_seq)
        .annotate(policy_version=KT("data__policy_version"))
        .order_by()
        .values("policy_version")
        .annotate(cases=Count("id"))
        .order_by("-cases")
    )

    def change(event: AuditEvent) -> dict[str, Any]:
        return {"seq": event.seq, "at": event.at, "actor": event.actor, **event.data}

    return {
        "in_force_at_start": change(before) if before else None,
        "changes": [change(event) for event in during],
        "cases_decided_by_version": list(decided),
    }


def evidence_write(*, period: Period, out: Path, progress: Progress | None = None) -> EvidenceSummary:
    """1. Verify the whole chain; rows appended after it started are left out.
    2. Stream the period's events into the zip (constant memory), hashing as it goes.
    3. Add the chain proof, policy versions, metrics, manifest and README.
    4. Write beside `out` and rename at the end: a failed run leaves no half bundle."""
    steps: Progress = progress or (lambda rows, total, label: rows)
    length = chain_length()
    report = verify_chain(progress=lambda rows: steps(rows, length, "verify chain"))
    events = events_between(period.since, period.until).filter(seq__lte=length).order_by("seq")
    total = events.count()
    first, last = events.first(), events.last()
    partial = out.with_name(out.name + ".partial")
    manifest: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as bundle:

            def add(name: str, content: bytes) -> None:
                bundle.writestr(name, content)
                manifest[name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}

            digest, size = hashlib.sha256(), 0
            with bundle.open("events.jsonl", "w", force_zip64=True) as stream:
                for line in steps(_event_lines(events), total, "export events"):
                    data = line.encode()
                    stream.write(data)
                    digest.update(data)
                    size += len(data)
            manifest["events.jsonl"] = {"sha256": digest.hexdigest(), "bytes": size}
            add(
                "chain.json",
                _json_bytes(
                    {
                        "verification": asdict(report),
                        "verified_at": timezone.now(),
                        "anchor_hash": first.prev_hash if first else None,
                        "first_event": _event_ref(first),
                        "last_event": _event_ref(last),
                        "events": total,
                    }
                ),
            )
            add("policy_versions.json", _json_bytes(_policy_versions(period, length)))
            add("metrics.json", _json_bytes(metrics_summary(period).as_dict()))
            add(
                "README.txt",
                README.format(
                    since=period.since.isoformat(),
                    until=period.until.isoformat(),
                    count=total,
                    verified_at=timezone.now().isoformat(),
                    verdict="intact"
                    if report.ok
                    else f"BROKEN at seq {report.first_bad_seq}: {report.reason}",
                ).encode(),
            )
            bundle.writestr(
                "manifest.json",
                _json_bytes(
                    {
                        "since": period.since,
                        "until": period.until,
                        "generated_at": timezone.now(),
                        "files": manifest,
                    }
                ),
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return EvidenceSummary(path=out, events=total, chain=report)


def _event_lines(events: Any) -> Iterator[str]:
    fields = [name for name in default_fields(AuditEvent) if name != "id"]
    for row in events.values_list("id", *fields).iterator(chunk_size=CHUNK_SIZE):
        yield json_line({"id": row[0], **dict(zip(fields, row[1:], strict=True))})
