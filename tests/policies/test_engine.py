import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from policies.engine import Effect, RuleSpec, Signal, UnknownAction, decide
from tests.policies.builders import NOON_MONDAY, RULES, quiet_input, snapshot

EVERY_RULE = snapshot(*RULES.values())


def test_quiet_input_gets_the_base_tier_with_its_reason():
    decision = decide(EVERY_RULE, quiet_input())
    assert decision.tier.level == 2
    assert not decision.blocked
    assert decision.reasons == ("Password reset: base tier 2 (Elevated)",)
    assert decision.policy_version == "test-version"


@pytest.mark.parametrize(
    ("signal", "overrides", "reason"),
    [
        (Signal.SUBJECT_PRIVILEGED, {"subject_privileged": True}, "subject is privileged"),
        (
            Signal.FACTOR_RECENTLY_ENROLLED,
            {"newest_factor_enrolled_at": NOON_MONDAY - timedelta(days=2)},
            "enrolled less than 7 day(s) ago",
        ),
        (
            Signal.CONTACT_RECENTLY_CHANGED,
            {"contact_changed_at": NOON_MONDAY - timedelta(days=13)},
            "contact details changed",
        ),
        (Signal.OFF_HOURS, {"at": NOON_MONDAY.replace(hour=22)}, "outside business hours (Europe/Berlin)"),
        (Signal.REQUESTER_NOT_SUBJECT, {"requester_is_subject": False}, "requester is not the subject"),
        (Signal.CONTACT_CHANNEL, {"channel": "phone"}, "contact over phone"),
    ],
)
def test_each_escalating_signal_raises_one_level_and_says_why(signal, overrides, reason):
    decision = decide(EVERY_RULE, quiet_input(**overrides))
    assert decision.tier.level == 3
    assert reason in decision.reasons[-1]
    assert decision.reasons[-1].startswith(f"escalated to tier 3 (Privileged) by rule '{RULES[signal].name}'")


def test_old_factor_and_old_contact_change_do_not_fire():
    decision = decide(
        EVERY_RULE,
        quiet_input(
            newest_factor_enrolled_at=NOON_MONDAY - timedelta(days=8),
            contact_changed_at=NOON_MONDAY - timedelta(days=15),
        ),
    )
    assert decision.tier.level == 2


def test_weekend_is_off_hours_even_at_noon():
    saturday = NOON_MONDAY - timedelta(days=2)
    assert decide(EVERY_RULE, quiet_input(at=saturday)).tier.level == 3


def test_velocity_escalates_to_the_named_tier_only_within_its_window():
    recent = tuple(NOON_MONDAY - timedelta(hours=h) for h in (1, 2, 3))
    assert decide(EVERY_RULE, quiet_input(recent_case_times=recent)).tier.level == 4
    stale = tuple(NOON_MONDAY - timedelta(hours=h) for h in (1, 2, 30))
    assert decide(EVERY_RULE, quiet_input(recent_case_times=stale)).tier.level == 2


def test_recent_failed_cases_block_with_a_reason():
    failures = (NOON_MONDAY - timedelta(hours=5), NOON_MONDAY - timedelta(hours=50))
    decision = decide(EVERY_RULE, quiet_input(recent_failed_case_times=failures))
    assert decision.blocked
    assert decision.reasons[-1] == "blocked by rule 'failures': 2 failed case(s) for this subject in 72 h"


def test_escalate_to_a_lower_tier_never_lowers():
    lower = RuleSpec(9, "to standard", Signal.SUBJECT_PRIVILEGED, Effect.ESCALATE_TO, target_level=1)
    decision = decide(snapshot(lower), quiet_input(action="role_escalation", subject_privileged=True))
    assert decision.tier.level == 4
    assert "tier already 4" in decision.reasons[-1]


def test_escalations_stop_at_the_top_tier():
    decision = decide(
        EVERY_RULE, quiet_input(action="role_escalation", subject_privileged=True, channel="chat")
    )
    assert decision.tier.level == 4


def test_rules_scoped_to_actions_ignore_others():
    scoped = RuleSpec(
        9,
        "mfa voice",
        Signal.CONTACT_CHANNEL,
        Effect.ESCALATE_BY,
        levels=1,
        channels=frozenset({"phone"}),
        actions=frozenset({"mfa_reset"}),
    )
    assert decide(snapshot(scoped), quiet_input(channel="phone")).tier.level == 2
    assert decide(snapshot(scoped), quiet_input(action="mfa_reset", channel="phone")).tier.level == 4


def test_unknown_action_is_refused():
    with pytest.raises(UnknownAction):
        decide(EVERY_RULE, quiet_input(action="make_coffee"))


def test_the_engine_imports_nothing_but_the_standard_library():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, policies.engine; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))",
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = {"policies", "portal", "verification", "audit", "django", "rest_framework", "celery"}
    assert set(loaded) & ours == {"policies"}
