"""Audit exports and filters on PostgreSQL: the SQL they rely on differs from SQLite's."""

import csv
import io
import json
from datetime import datetime

import pytest

from audit.models import AuditEvent
from audit.selectors import distinct_values
from audit.services import record
from tests.otp import otp_login

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/auditevent/"


def test_csv_export_reads_json_as_text_and_defuses_formulas(client, auditor):
    otp_login(client, auditor)
    record(
        "login_failed", outcome="failure", actor="=cmd|'/c calc'!A1", subject="-2+3", data={"n": 1, "a": [1]}
    )
    response = client.get(f"{CHANGELIST}export/csv/", {"verb": "login_failed"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    event = AuditEvent.objects.get(verb="login_failed")
    assert len(rows) == 1
    assert rows[0]["actor"] == "'=cmd|'/c calc'!A1"
    assert rows[0]["subject"] == "'-2+3"
    assert json.loads(rows[0]["data"]) == {"n": 1, "a": [1]}
    assert datetime.fromisoformat(rows[0]["at"]) == event.at
    assert rows[0]["hash"] == event.hash


def test_filter_values_come_from_walking_the_index():
    for verb in ("case_opened", "case_verified", "case_opened", "login"):
        record(verb, channel="phone" if verb != "login" else "")
    assert distinct_values(AuditEvent, "verb") == ["case_opened", "case_verified", "login"]
    assert distinct_values(AuditEvent, "channel") == ["phone"]
