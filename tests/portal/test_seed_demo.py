import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.demo import ADMIN_USERNAME, DEMO_PEOPLE
from portal.models import User
from portal.roles import ROLE_GROUP_NAMES, Role

pytestmark = pytest.mark.django_db


def test_roles_are_groups_with_permissions_after_migrate():
    names = set(Group.objects.values_list("name", flat=True))
    assert set(ROLE_GROUP_NAMES.values()) <= names
    auditor = Group.objects.get(name=Role.AUDITOR.group_name)
    assert auditor.permissions.filter(codename="view_auditevent").exists()
    assert not auditor.permissions.filter(codename="change_user").exists()


def test_seed_is_idempotent_and_prints_the_admin_login(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--no-qr")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert User.objects.count() == len(DEMO_PEOPLE)
    assert TOTPDevice.objects.filter(user__username=ADMIN_USERNAME).count() == 1
    assert first.splitlines()[-1] == second.splitlines()[-1]
    assert second.splitlines()[-1].startswith("otpauth://totp/")
    password = (tmp_path / "demo-password").read_text().strip()
    assert f"password: {password}" in second
    admin = User.objects.get(username=ADMIN_USERNAME)
    assert admin.check_password(password) and admin.has_role(Role.SECURITY_ADMIN)
    assert User.objects.get(username="emp.jordan").manager.username == "manager.maria"
