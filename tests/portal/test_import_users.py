from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from portal.models import User
from portal.roles import Role

pytestmark = pytest.mark.django_db

HEADER = "username,email,phone,manager,department,title,is_privileged,roles\n"


def run_import(tmp_path: Path, body: str, capsys) -> tuple[bool, str]:
    path = tmp_path / "people.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    try:
        call_command("import_users", str(path))
        ok = True
    except CommandError as exc:
        assert exc.returncode == 1
        ok = False
    captured = capsys.readouterr()
    return ok, captured.out + captured.err


def test_rows_load_in_any_order_with_roles(tmp_path, capsys):
    ok, out = run_import(
        tmp_path,
        "jo,jo@example.test,+14155550101,mo,Eng,Engineer,false,agent;approver\n"
        "mo,mo@example.test,+14155550102,,Eng,Manager,yes,manager\n",
        capsys,
    )
    assert ok, out
    jo = User.objects.get(username="jo")
    assert jo.manager.username == "mo"
    assert jo.phone == "+14155550101"
    assert jo.has_role(Role.AGENT) and jo.has_role(Role.APPROVER)
    assert User.objects.get(username="mo").is_privileged
    assert not jo.has_usable_password()
    assert AuditEvent.objects.filter(verb="user_imported").count() == 2


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("bad,not-an-email,+14155550101,,,,false,", "bad email"),
        ("bad,b@example.test,12345,,,,false,", "bad phone"),
        ("bad,b@example.test,+14155550101,ghost,,,false,", "unknown manager 'ghost'"),
        ("bad,b@example.test,+14155550101,,,,maybe,", "bad boolean"),
        ("bad,b@example.test,+14155550101,,,,false,admin", "unknown role 'admin'"),
        ("bad,b@example.test,+14155550101,bad,,,false,", "own manager"),
    ],
)
def test_bad_row_is_reported_with_its_line_and_good_rows_still_load(tmp_path, capsys, row, reason):
    ok, out = run_import(tmp_path, "good,g@example.test,+14155550103,,,,false,\n" + row + "\n", capsys)
    assert not ok
    assert "people.csv:3: " in out and reason in out
    assert User.objects.filter(username="good").exists()
    assert not User.objects.filter(username="bad").exists()
    assert "1 created, 0 updated, 1 bad row(s)" in out


def test_manager_cycle_in_the_file_rejects_every_row_of_the_cycle(tmp_path, capsys):
    ok, out = run_import(
        tmp_path,
        "a,a@example.test,,b,,,false,\nb,b@example.test,,c,,,false,\nc,c@example.test,,a,,,false,\n"
        "d,d@example.test,,a,,,false,\n",
        capsys,
    )
    assert not ok
    for line in (2, 3, 4):
        assert f"people.csv:{line}: manager cycle" in out
    assert "people.csv:5: manager 'a' was not imported" in out
    assert User.objects.count() == 0


def test_manager_cycle_through_existing_users_is_refused(tmp_path, capsys):
    boss = User.objects.create(username="boss")
    User.objects.create(username="report", manager=boss)
    ok, out = run_import(tmp_path, "boss,boss@example.test,,report,,,false,\n", capsys)
    assert not ok
    assert "people.csv:2: manager cycle" in out
    boss.refresh_from_db()
    assert boss.manager is None and boss.email == ""


def test_reimport_updates_and_marks_contact_change(tmp_path, capsys):
    run_import(tmp_path, "jo,jo@example.test,+14155550101,,,,false,agent\n", capsys)
    assert User.objects.get(username="jo").contact_changed_at is None
    ok, out = run_import(tmp_path, "jo,jo@example.test,+14155550199,,,Lead,false,\n", capsys)
    assert ok and "0 created, 1 updated" in out
    jo = User.objects.get(username="jo")
    assert (jo.phone, jo.title) == ("+14155550199", "Lead")
    assert jo.contact_changed_at is not None
    assert not jo.has_role(Role.AGENT)


def test_duplicate_username_in_the_file_is_a_bad_row(tmp_path, capsys):
    ok, out = run_import(tmp_path, "jo,jo@example.test,,,,,false,\njo,jo2@example.test,,,,,false,\n", capsys)
    assert not ok and "people.csv:3: username 'jo' repeats line 2" in out


def test_missing_columns_and_unreadable_files_are_clear_errors(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("username,email\njo,jo@example.test\n")
    with pytest.raises(CommandError):
        call_command("import_users", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_users", str(tmp_path / "absent.csv"))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(HEADER.encode() + b"\xff\xfe\xfa,\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_users", str(binary))
    assert User.objects.count() == 0
