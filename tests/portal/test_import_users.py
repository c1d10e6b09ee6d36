from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from portal.models import User
from portal.roles import Role

pytestmark = pytest.mark.django_db

HEADER = "username,email,phone,manager,department,title,is_privileged,roles\n"
GOOD_ROW = "good,g@example.test,+14155550103,,,,false,\n"


def run_import(tmp_path: Path, body: str | bytes, capsys, *, header: str = HEADER) -> tuple[bool, str]:
    path = tmp_path / "people.csv"
    content = body if isinstance(body, bytes) else body.encode()
    path.write_bytes(header.encode() + content)
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
    assert "2 created, 0 updated, 0 bad row(s)" in out
    jo = User.objects.get(username="jo")
    assert jo.manager.username == "mo"
    assert jo.phone == "+14155550101"
    assert jo.has_role(Role.AGENT) and jo.has_role(Role.APPROVER)
    assert User.objects.get(username="mo").is_privileged
    assert not jo.has_usable_password()
    assert AuditEvent.objects.filter(verb="user_imported").count() == 2


def test_phone_numbers_are_stored_in_e164(tmp_path, capsys):
    ok, out = run_import(tmp_path, "jo,jo@example.test,+1 (415) 555-0101,,,,false,\n", capsys)
    assert ok, out
    assert User.objects.get(username="jo").phone == "+14155550101"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("bad,not-an-email,+14155550101,,,,false,", "bad email 'not-an-email'"),
        ("bad,b@example.test,12345,,,,false,", "bad phone '12345'"),
        ("bad,b@example.test,+1555,,,,false,", "bad phone '+1555'"),
        ("bad,b@example.test,+14155550101,ghost,,,false,", "unknown manager 'ghost'"),
        ("bad,b@example.test,+14155550101,,,,maybe,", "bad boolean for is_privileged: 'maybe'"),
        ("bad,b@example.test,+14155550101,,,,false,admin", "unknown role 'admin'"),
        ("bad,b@example.test,+14155550101,,,,false,agent;root", "unknown role 'root'"),
        ("bad,b@example.test,+14155550101,bad,,,false,", "a user cannot be their own manager"),
        (",b@example.test,+14155550101,,,,false,", "username is empty"),
    ],
)
def test_bad_row_is_reported_with_its_line_and_good_rows_still_load(tmp_path, capsys, row, reason):
    ok, out = run_import(tmp_path, GOOD_ROW + row + "\n", capsys)
    assert not ok
    assert f"people.csv:3: {reason}" in out
    assert User.objects.filter(username="good").exists()
    assert not User.objects.filter(username="bad").exists()
    assert "1 created, 0 updated, 1 bad row(s)" in out


def test_a_manager_defined_later_in_the_file_is_found(tmp_path, capsys):
    ok, out = run_import(
        tmp_path,
        "a,a@example.test,,b,,,false,\nb,b@example.test,,c,,,false,\nc,c@example.test,,,,,false,\n",
        capsys,
    )
    assert ok, out
    a = User.objects.select_related("manager__manager").get(username="a")
    assert (a.manager.username, a.manager.manager.username) == ("b", "c")


def test_manager_cycle_in_the_file_rejects_every_row_of_the_cycle(tmp_path, capsys):
    ok, out = run_import(
        tmp_path,
        "a,a@example.test,,b,,,false,\nb,b@example.test,,c,,,false,\nc,c@example.test,,a,,,false,\n"
        "d,d@example.test,,a,,,false,\n" + GOOD_ROW,
        capsys,
    )
    assert not ok
    for line in (2, 3, 4):
        assert f"people.csv:{line}: manager cycle" in out
    assert "people.csv:5: manager 'a' was not imported" in out
    assert list(User.objects.values_list("username", flat=True)) == ["good"]


def test_manager_cycle_through_existing_users_is_refused(tmp_path, capsys):
    boss = User.objects.create(username="boss")
    User.objects.create(username="report", manager=boss)
    ok, out = run_import(tmp_path, "boss,boss@example.test,,report,,,false,\n" + GOOD_ROW, capsys)
    assert not ok
    assert "people.csv:2: manager cycle" in out
    boss.refresh_from_db()
    assert boss.manager is None and boss.email == ""
    assert User.objects.filter(username="good").exists()


def test_reimport_is_idempotent(tmp_path, capsys):
    body = "jo,jo@example.test,+14155550101,mo,Eng,Engineer,true,agent\nmo,mo@example.test,,,Eng,,false,\n"
    run_import(tmp_path, body, capsys)
    before = list(User.objects.order_by("username").values())
    ok, out = run_import(tmp_path, body, capsys)
    assert ok and "0 created, 2 updated, 0 bad row(s)" in out
    assert list(User.objects.order_by("username").values()) == before
    assert User.objects.get(username="jo").contact_changed_at is None


@pytest.mark.parametrize(
    "changed_row",
    [
        "jo,jo@example.test,+14155550199,,,Lead,false,",
        "jo,jo.new@example.test,+14155550101,,,Lead,false,",
    ],
)
def test_reimport_updates_and_marks_a_contact_change(tmp_path, capsys, changed_row):
    run_import(tmp_path, "jo,jo@example.test,+14155550101,,,,false,agent\n", capsys)
    assert User.objects.get(username="jo").contact_changed_at is None
    ok, out = run_import(tmp_path, changed_row + "\n", capsys)
    assert ok and "0 created, 1 updated" in out
    jo = User.objects.get(username="jo")
    assert jo.title == "Lead"
    assert jo.contact_changed_at is not None
    assert not jo.has_role(Role.AGENT)
    assert AuditEvent.objects.filter(verb="user_updated", subject="jo").count() == 1


def test_duplicate_username_in_the_file_is_a_bad_row(tmp_path, capsys):
    ok, out = run_import(tmp_path, "jo,jo@example.test,,,,,false,\njo,jo2@example.test,,,,,false,\n", capsys)
    assert not ok and "people.csv:3: username 'jo' repeats line 2" in out
    assert User.objects.get(username="jo").email == "jo@example.test"


def test_a_row_failing_at_save_leaves_nothing_half_written(tmp_path, capsys):
    """The username and title checks run at full_clean(), after the row was created or
    changed in its transaction: the whole row must roll back, audit event included."""
    User.objects.create(username="jo", email="jo@example.test", phone="+14155550101")
    ok, out = run_import(
        tmp_path,
        "no spaces allowed,x@example.test,,,,,false,agent\n"
        f"jo,jo.new@example.test,+14155550199,,,{'T' * 121},true,auditor\n" + GOOD_ROW,
        capsys,
    )
    assert not ok
    assert "people.csv:2: username: Enter a valid username" in out
    assert "people.csv:3: title: Ensure this value has at most 120 characters" in out
    assert not User.objects.filter(username="no spaces allowed").exists()
    jo = User.objects.get(username="jo")
    assert (jo.email, jo.phone, jo.is_privileged, jo.contact_changed_at) == (
        "jo@example.test",
        "+14155550101",
        False,
        None,
    )
    assert not jo.groups.exists()
    assert list(AuditEvent.objects.values_list("verb", "subject")) == [("user_imported", "good")]


def test_missing_columns_are_reported_on_line_1(tmp_path, capsys):
    ok, out = run_import(tmp_path, "jo,jo@example.test\n", capsys, header="username,email\n")
    assert not ok
    assert "people.csv:1: missing column(s): department, is_privileged, manager, phone, title" in out
    assert not User.objects.exists()


def test_roles_column_is_optional(tmp_path, capsys):
    ok, out = run_import(
        tmp_path, "jo,jo@example.test,,,,,false\n", capsys, header=HEADER.replace(",roles", "")
    )
    assert ok, out
    assert User.objects.filter(username="jo").exists()


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_loads(tmp_path, capsys):
    ok, out = run_import(
        tmp_path,
        GOOD_ROW.encode() + b"bad,b@example.test,,,,Ing\xe9nieur,false,\nlast,l@example.test,,,,,0,\n",
        capsys,
    )
    assert not ok
    assert "people.csv:3: not UTF-8 text" in out
    assert sorted(User.objects.values_list("username", flat=True)) == ["good", "last"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    ok, out = run_import(
        tmp_path, "jo,jo@example.test,,,,Ingénieur,false,\n", capsys, header="\ufeff" + HEADER
    )
    assert ok, out
    assert User.objects.get(username="jo").title == "Ingénieur"


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*absent\.csv: No such file or directory"):
        call_command("import_users", str(tmp_path / "absent.csv"))
