import csv
import hashlib
import io
import itertools
import json
import zipfile
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.management import progress
from audit.models import AuditEvent
from audit.services import record
from tests.audit.trail import event, november_trail
from tests.otp import otp_login

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/auditevent/"
COLUMNS = [f.attname for f in AuditEvent._meta.concrete_fields]


@pytest.fixture
def auditor_client(client, auditor):
    otp_login(client, auditor)
    november_trail()
    return client


def body(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def rows_of(**lookups):
    return list(AuditEvent.objects.filter(**lookups).order_by("-at", "-seq"))


@pytest.mark.parametrize(
    ("query", "lookups"),
    [
        ({}, {}),
        ({"outcome": "blocked"}, {"outcome": "blocked"}),
        ({"subject": "bob", "verb": "challenge_failed"}, {"subject": "bob", "verb": "challenge_failed"}),
        ({"q": "agent.b"}, {"actor": "agent.b"}),
        ({"at__year": "2026", "at__month": "11", "at__day": "6"}, {"at__date": "2026-11-06"}),
    ],
)
def test_csv_export_is_exactly_the_filtered_changelist(auditor_client, query, lookups):
    lines = list(csv.reader(io.StringIO(body(auditor_client.get(f"{CHANGELIST}export/csv/", query)))))
    # Read after the export: the export's own audit row is part of what it shows.
    wanted = rows_of(**lookups)
    assert wanted
    assert lines[0] == COLUMNS
    assert [int(line[COLUMNS.index("seq")]) for line in lines[1:]] == [e.seq for e in wanted]
    first = dict(zip(COLUMNS, lines[1], strict=True))
    assert first["hash"] == wanted[0].hash
    assert datetime.fromisoformat(first["at"]) == wanted[0].at
    assert json.loads(first["data"]) == wanted[0].data


def test_jsonl_export_keeps_every_value_so_hashes_can_be_recomputed(auditor_client):
    wanted = rows_of(outcome="failure")
    lines = body(auditor_client.get(f"{CHANGELIST}export/jsonl/", {"outcome": "failure"})).splitlines()
    exported = [json.loads(line) for line in lines]
    assert [row["seq"] for row in exported] == [e.seq for e in wanted]
    for row, recorded in zip(exported, wanted, strict=True):
        rebuilt = AuditEvent(**{k: v for k, v in row.items() if k != "id"})
        rebuilt.at = datetime.fromisoformat(row["at"])
        assert rebuilt.compute_hash() == recorded.hash


def test_export_response_is_an_attachment_and_is_audited(auditor_client, auditor):
    response = auditor_client.get(f"{CHANGELIST}export/csv/", {"outcome": "blocked"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="auditevent-')
    body(response)
    logged = AuditEvent.objects.filter(verb="admin_export").latest("seq")
    assert logged.actor == auditor.username
    assert logged.data == {"model": "audit.auditevent", "format": "csv", "filters": "outcome=blocked"}


def test_unknown_format_is_404_and_bad_lookups_go_back_to_the_list(auditor_client):
    assert auditor_client.get(f"{CHANGELIST}export/xlsx/").status_code == 404
    response = auditor_client.get(f"{CHANGELIST}export/csv/", {"at__year": "twenty"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_export_selected_rows_by_action(auditor_client):
    chosen = rows_of(verb="case_verified")
    response = auditor_client.post(
        CHANGELIST,
        {"action": "export_selected_jsonl", "_selected_action": [e.pk for e in chosen], "index": 0},
    )
    exported = [json.loads(line) for line in body(response).splitlines()]
    assert sorted(row["id"] for row in exported) == sorted(e.pk for e in chosen)


def test_spreadsheet_formulas_in_recorded_names_are_defused_in_csv_only(auditor_client):
    typed_by_a_stranger = '=HYPERLINK("http://evil.example","open")'
    record("login_failed", outcome="failure", actor=typed_by_a_stranger, subject="@SUM(A1)")
    query = {"verb": "login_failed"}
    row = next(csv.DictReader(io.StringIO(body(auditor_client.get(f"{CHANGELIST}export/csv/", query)))))
    assert row["actor"] == "'" + typed_by_a_stranger
    assert row["subject"] == "'@SUM(A1)"
    assert row["verb"] == "login_failed" and row["tier"] == ""
    exact = json.loads(body(auditor_client.get(f"{CHANGELIST}export/jsonl/", query)).splitlines()[0])
    assert exact["actor"] == typed_by_a_stranger


def bundle(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_evidence_bundle_holds_the_period_with_its_proof(tmp_path, capsys):
    november_trail()
    november = list(
        AuditEvent.objects.filter(at__gte="2026-11-01T00:00:00Z", at__lt="2026-12-01T00:00:00Z").order_by(
            "seq"
        )
    )
    out = tmp_path / "november.zip"
    call_command("export_evidence", str(out), "--since", "2026-11-01", "--until", "2026-11-30")
    files = bundle(out)
    assert set(files) == {
        "events.jsonl",
        "chain.json",
        "policy_versions.json",
        "metrics.json",
        "manifest.json",
        "README.txt",
    }
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    assert [e["seq"] for e in events] == [e.seq for e in november]
    for previous, current in itertools.pairwise(events):
        assert current["prev_hash"] == previous["hash"]

    chain = json.loads(files["chain.json"])
    assert chain["verification"]["ok"] is True
    assert chain["anchor_hash"] == november[0].prev_hash
    assert chain["first_event"]["hash"] == november[0].hash
    assert chain["last_event"]["hash"] == november[-1].hash
    assert chain["events"] == len(november)

    metrics = json.loads(files["metrics.json"])
    assert metrics["cases"]["opened"] == 7
    assert metrics["actions"]["prevented"] == 4

    policy = json.loads(files["policy_versions.json"])
    assert policy["cases_decided_by_version"] == [{"policy_version": "v1", "cases": 7}]

    manifest = json.loads(files["manifest.json"])
    for name, entry in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == entry["sha256"]
    output = capsys.readouterr().out
    assert f"{len(november)} events from 2026-11-01T00:00:00+00:00 to 2026-12-01T00:00:00+00:00" in output
    assert "chain intact" in output
    exported = AuditEvent.objects.filter(verb="evidence_exported").get()
    assert exported.actor == "export_evidence" and exported.data["events"] == len(november)


def test_policy_versions_in_force_and_changed(tmp_path):
    event(
        datetime(2026, 10, 3, tzinfo=UTC),
        "policy_changed",
        actor="sec.admin",
        data={"model": "risktier", "object": "Elevated", "change": "changed", "version": 4},
    )
    event(
        datetime(2026, 11, 9, tzinfo=UTC),
        "policy_changed",
        actor="sec.admin",
        data={"model": "riskrule", "object": "Off hours", "change": "created", "version": 5},
    )
    out = tmp_path / "bundle.zip"
    call_command("export_evidence", str(out), "--since", "2026-11-01", "--until", "2026-11-30")
    policy = json.loads(bundle(out)["policy_versions.json"])
    assert policy["in_force_at_start"]["version"] == 4
    assert [change["version"] for change in policy["changes"]] == [5]
    assert policy["changes"][0]["object"] == "Off hours"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-31"], "since: '2026-11-31' is not a date"),
        (["--since", "yesterday"], "since: 'yesterday' is not a date"),
        (["--since", "2026-11-01", "--until", "soon"], "until: 'soon' is not a date"),
        (["--since", "2026-11-10", "--until", "2026-11-01"], "must be before until"),
    ],
)
def test_bad_dates_exit_non_zero_with_a_message(tmp_path, args, message):
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError, match=message) as raised:
        call_command("export_evidence", str(out), *args)
    assert raised.value.returncode == 1
    assert not out.exists()


def test_refuses_to_overwrite_or_write_nowhere(tmp_path):
    existing = tmp_path / "old.zip"
    existing.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists; pass --force"):
        call_command("export_evidence", str(existing), "--since", "2026-11-01")
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("export_evidence", str(tmp_path / "nope" / "x.zip"), "--since", "2026-11-01")
    with pytest.raises(CommandError, match=r"name it \*\.zip"):
        call_command("export_evidence", str(tmp_path / "x.tar"), "--since", "2026-11-01")


def test_a_broken_chain_is_written_into_the_bundle_and_fails_the_command(tmp_path):
    november_trail()
    victim = AuditEvent.objects.filter(verb="case_blocked").get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'success' WHERE id = %s", [victim.pk])
    out = tmp_path / "broken.zip"
    with pytest.raises(CommandError, match=f"BROKEN at seq {victim.seq}"):
        call_command("export_evidence", str(out), "--since", "2026-11-01", "--until", "2026-11-30")
    chain = json.loads(bundle(out)["chain.json"])
    assert chain["verification"]["ok"] is False
    assert chain["verification"]["first_bad_seq"] == victim.seq
    # Every event of the period is still handed over, the altered one and those after it too.
    exported = [json.loads(line)["seq"] for line in bundle(out)["events.jsonl"].decode().splitlines()]
    assert victim.seq in exported and exported[-1] > victim.seq
    assert "BROKEN" in bundle(out)["README.txt"].decode()


def test_progress_bars_on_stderr_for_big_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PROGRESS_FROM_ROWS", 3)
    november_trail()
    call_command("export_evidence", str(tmp_path / "b.zip"), "--since", "2026-11-01")
    err = capsys.readouterr().err
    assert "verify chain" in err and "export events" in err
    call_command("export_evidence", str(tmp_path / "c.zip"), "--since", "2026-11-01", "--no-progress")
    assert "export events" not in capsys.readouterr().err
