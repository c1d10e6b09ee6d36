"""The demo organisation `seed_demo` and `make run` load. Idempotent."""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from policies.demo import seed_policy
from portal.models import User
from portal.roles import Role
from verification.factors import factor_enroll

ADMIN_USERNAME = "admin"

# username, email, phone, manager, title, privileged, roles, staff
DEMO_PEOPLE: list[tuple[str, str, str, str, str, bool, list[Role], bool]] = [
    (
        ADMIN_USERNAME,
        "admin@example.test",
        "+15550100001",
        "",
        "Security lead",
        True,
        [Role.SECURITY_ADMIN],
        True,
    ),
    ("agent.sam", "sam@example.test", "+15550100002", "", "Service desk agent", False, [Role.AGENT], True),
    ("auditor.ada", "ada@example.test", "+15550100003", "", "Internal auditor", False, [Role.AUDITOR], True),
    (
        "manager.maria",
        "maria@example.test",
        "+15550100004",
        "",
        "Engineering manager",
        False,
        [Role.MANAGER],
        False,
    ),
    (
        "approver.omar",
        "omar@example.test",
        "+15550100005",
        "",
        "Platform owner",
        False,
        [Role.APPROVER],
        False,
    ),
    ("emp.jordan", "jordan@example.test", "+15550100006", "manager.maria", "Engineer", False, [], False),
    (
        "emp.priya",
        "priya@example.test",
        "+15550100007",
        "manager.maria",
        "Database administrator",
        True,
        [],
        False,
    ),
]


@dataclass
class DemoLogin:
    username: str
    password: str
    otpauth_uri: str


def _demo_password() -> str:
    """One password for the demo people, generated on first seed and kept under var/."""
    path = settings.VAR_DIR / "demo-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


@transaction.atomic
def demo_seed() -> DemoLogin:
    password = _demo_password()
    for username, email, phone, manager, title, privileged, roles, staff in DEMO_PEOPLE:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "email": email,
                "phone": phone,
                "title": title,
                "is_privileged": privileged,
                "is_staff": staff,
                "is_superuser": username == ADMIN_USERNAME,
                "manager": User.objects.filter(username=manager).first(),
            },
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            user.groups.set(Group.objects.filter(name__in=[role.group_name for role in roles]))
            factor_enroll(user=user, method="email")
        if not TOTPDevice.objects.filter(user=user).exists():
            factor_enroll(user=user, method="totp")
    seed_policy()
    # The newest authenticator app is the one the admin login checks.
    admin_device = TOTPDevice.objects.filter(user__username=ADMIN_USERNAME).order_by("-id").first()
    assert admin_device is not None  # created just above
    return DemoLogin(ADMIN_USERNAME, password, admin_device.config_url)
