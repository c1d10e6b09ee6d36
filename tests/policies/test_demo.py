"""The default policy `seed_demo` loads."""

from itertools import pairwise

import pytest

from audit.models import AuditEvent
from policies.demo import seed_policy
from policies.engine import Signal
from policies.models import PolicyVersion, RiskRule, RiskTier, SensitiveAction

pytestmark = pytest.mark.django_db


def test_four_tiers_eight_actions_and_a_rule_for_every_signal():
    seed_policy()
    assert list(RiskTier.objects.values_list("name", flat=True)) == [
        "Standard",
        "Elevated",
        "Privileged",
        "Critical",
    ]
    assert set(SensitiveAction.objects.values_list("code", flat=True)) == set(SensitiveAction.Code.values)
    assert set(RiskRule.objects.filter(enabled=True).values_list("signal", flat=True)) == set(Signal)


def test_every_seeded_object_passes_the_admin_validation():
    seed_policy()
    for model in (RiskTier, SensitiveAction, RiskRule):
        for instance in model.objects.all():
            instance.full_clean()


def test_stricter_tiers_never_demand_less():
    seed_policy()
    tiers = list(RiskTier.objects.order_by("level"))
    for lower, higher in pairwise(tiers):
        assert higher.required_factors >= lower.required_factors
        assert higher.min_factor_age_days >= lower.min_factor_age_days
        assert higher.challenge_ttl_seconds <= lower.challenge_ttl_seconds
        assert higher.max_attempts <= lower.max_attempts
        assert higher.max_grant_minutes <= lower.max_grant_minutes
        assert higher.approvals_required >= lower.approvals_required


def test_seeding_again_changes_nothing_and_keeps_admin_edits():
    seed_policy()
    elevated = RiskTier.objects.get(level=2)
    elevated.challenge_ttl_seconds = 90
    elevated.save()
    version, events = PolicyVersion.objects.get().number, AuditEvent.objects.count()
    seed_policy()
    assert RiskTier.objects.count() == 4 and SensitiveAction.objects.count() == 8
    assert RiskRule.objects.count() == len({rule.name for rule in RiskRule.objects.all()})
    assert RiskTier.objects.get(level=2).challenge_ttl_seconds == 90
    assert (PolicyVersion.objects.get().number, AuditEvent.objects.count()) == (version, events)
