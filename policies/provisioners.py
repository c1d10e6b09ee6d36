"""Giving and taking away access in the system an entitlement lives in.
Each call is idempotent: granting twice or revoking twice leaves the same state."""

from django.conf import settings

from policies.models import Entitlement, Grant, Provisioner
from verification.channels import webhook_post


class ManualStep(Exception):
    """The provisioner is an operator: the grant waits on their task list."""


def _webhook(entitlement: Entitlement, operation: str, grant: Grant) -> None:
    webhook_post(
        url=entitlement.webhook_url,
        payload={
            "operation": operation,
            "grant": grant.pk,
            "user": grant.user.get_username(),
            "entitlement": entitlement.name,
            "system": entitlement.system,
            "expires_at": grant.expires_at.isoformat(),
        },
        secret=settings.PROVISIONING_WEBHOOK_SECRET,
    )


def provision(grant: Grant) -> None:
    entitlement = grant.entitlement
    if entitlement.provisioner == Provisioner.DJANGO_GROUP:
        assert entitlement.group is not None  # Entitlement.clean() demands it
        grant.user.groups.add(entitlement.group)
    elif entitlement.provisioner == Provisioner.WEBHOOK:
        _webhook(entitlement, "grant", grant)
    else:
        raise ManualStep(f"grant {entitlement.name} to {grant.user.get_username()}")


def deprovision(grant: Grant) -> None:
    entitlement = grant.entitlement
    if entitlement.provisioner == Provisioner.DJANGO_GROUP:
        assert entitlement.group is not None
        grant.user.groups.remove(entitlement.group)
    elif entitlement.provisioner == Provisioner.WEBHOOK:
        _webhook(entitlement, "revoke", grant)
    else:
        raise ManualStep(f"remove {entitlement.name} from {grant.user.get_username()}")
