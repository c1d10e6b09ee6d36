"""The demo organisation `seed_demo` and `make run` load. Idempotent."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from policies.demo import seed_entitlements, seed_policy
from portal.models import User
from portal.roles import Role
from verification.devices import DEVICE_METHODS, authenticator_of
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
        True,
    ),
    (
        "approver.omar",
        "omar@example.test",
        "+15550100005",
        "",
        "Platform owner",
        False,
        [Role.APPROVER],
        True,
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
    # Every demo person's authenticator URI, so a newcomer can act as any of them.
    people_uris: dict[str, str]


# Demo factors are dated a month back: the default policy does not count factors
# enrolled in the last days (SIM-swap defence), and a demo must work at once.
DEMO_FACTOR_AGE = timedelta(days=30)


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
            for method in ("email", "totp", "push", "sms"):
                factor_enroll(user=user, method=method)
            enrolled_at = timezone.now() - DEMO_FACTOR_AGE
            for model, _ in DEVICE_METHODS:
                model.objects.filter(user=user).update(created_at=enrolled_at)
        if authenticator_of(user) is None:
            factor_enroll(user=user, method="totp")
    seed_policy()
    seed_entitlements(owner=User.objects.get(username="approver.omar"))
    uris = {}
    for username, *_ in DEMO_PEOPLE:
        device = authenticator_of(User.objects.get(username=username))
        assert device is not None  # enrolled just above
        uris[username] = device.config_url
    return DemoLogin(ADMIN_USERNAME, password, uris[ADMIN_USERNAME], uris)
