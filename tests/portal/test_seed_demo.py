import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from portal.demo import ADMIN_USERNAME, DEMO_PEOPLE
from portal.models import User
from portal.roles import ROLE_PERMISSIONS, Role
from verification.models import AuthenticatorDevice

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_a_group_with_exactly_its_permissions_after_migrate(role):
    group = Group.objects.get(name=role.group_name)
    granted = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }
    assert granted == set(ROLE_PERMISSIONS[role])


def test_auditors_read_the_audit_trail_but_do_not_edit_people():
    auditor = Group.objects.get(name=Role.AUDITOR.group_name)
    assert auditor.permissions.filter(codename="view_auditevent").exists()
    assert not auditor.permissions.filter(codename="change_user").exists()


def test_seed_is_idempotent_and_prints_the_admin_login(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--no-qr")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert sorted(User.objects.values_list("username", flat=True)) == sorted(p[0] for p in DEMO_PEOPLE)
    for username, *_, roles, staff in DEMO_PEOPLE:
        user = User.objects.get(username=username)
        assert AuthenticatorDevice.objects.filter(user=user).count() == 1, username
        assert set(user.groups.values_list("name", flat=True)) == {role.group_name for role in roles}
        assert user.is_staff == staff
    assert first.splitlines()[-1] == second.splitlines()[-1]
    assert second.splitlines()[-1].startswith("otpauth://totp/")
    password = (tmp_path / "demo-password").read_text().strip()
    assert f"password: {password}" in second
    admin = User.objects.get(username=ADMIN_USERNAME)
    assert admin.check_password(password) and admin.has_role(Role.SECURITY_ADMIN)
    assert User.objects.get(username="emp.jordan").manager.username == "manager.maria"
