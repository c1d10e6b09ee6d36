"""Any policy change bumps the version row in the same transaction, clears this
process's cached snapshot once committed, and goes on the audit trail."""

from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from audit.services import record
from policies.models import PolicyVersion, RiskRule, RiskTier, SensitiveAction
from policies.snapshot import snapshot_invalidate


def policy_changed(instance: Any, change: str) -> None:
    # The row comes from a migration; get_or_create covers a database flushed since.
    PolicyVersion.objects.get_or_create(pk=1)
    PolicyVersion.objects.filter(pk=1).update(number=F("number") + 1, changed_at=timezone.now())
    number = PolicyVersion.objects.get(pk=1).number
    record(
        "policy_changed",
        target=instance,
        data={
            "model": instance._meta.model_name,
            "object": str(instance),
            "change": change,
            "version": number,
        },
    )
    transaction.on_commit(snapshot_invalidate)


def _on_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        policy_changed(instance, "created" if created else "changed")


def _on_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    policy_changed(instance, "deleted")


def _on_rule_actions(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        policy_changed(instance, "actions changed")


def connect() -> None:
    for model in (RiskTier, SensitiveAction, RiskRule):
        post_save.connect(_on_save, sender=model, dispatch_uid=f"policy-save-{model.__name__}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"policy-delete-{model.__name__}")
    m2m_changed.connect(_on_rule_actions, sender=RiskRule.actions.through, dispatch_uid="policy-rule-actions")
