"""Universal rules of the engine, checked under hypothesis."""

from dataclasses import fields, replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from policies.engine import Effect, PolicyInput, RuleSpec, Signal, decide
from tests.policies.builders import ACTIONS, NOON_MONDAY, RULES, snapshot

hours_ago = st.integers(min_value=0, max_value=24 * 20).map(lambda h: NOON_MONDAY - timedelta(hours=h))

inputs = st.builds(
    PolicyInput,
    action=st.sampled_from(sorted(ACTIONS)),
    channel=st.sampled_from(["phone", "chat", "email", "walk_in", "portal"]),
    at=st.integers(min_value=0, max_value=24 * 14).map(lambda h: NOON_MONDAY + timedelta(hours=h)),
    subject_privileged=st.booleans(),
    requester_is_subject=st.booleans(),
    newest_factor_enrolled_at=st.none() | hours_ago,
    contact_changed_at=st.none() | hours_ago,
    recent_case_times=st.lists(hours_ago, max_size=6).map(tuple),
    recent_failed_case_times=st.lists(hours_ago, max_size=4).map(tuple),
)

extra_rules = st.lists(
    st.builds(
        RuleSpec,
        id=st.integers(min_value=10, max_value=1000),
        name=st.just("generated"),
        signal=st.sampled_from(list(Signal)),
        effect=st.sampled_from(list(Effect)),
        levels=st.integers(min_value=0, max_value=3),
        target_level=st.none() | st.integers(min_value=1, max_value=4),
        threshold=st.integers(min_value=0, max_value=5),
        window_hours=st.integers(min_value=0, max_value=100),
        channels=st.frozensets(st.sampled_from(["phone", "chat", "email"])),
    ),
    max_size=5,
    unique_by=lambda rule: rule.id,
)


def rank(decision):
    return (decision.blocked, decision.tier.level)


@given(
    data=inputs,
    chosen=st.sets(st.sampled_from(list(RULES))),
    added=st.sampled_from(list(RULES)),
    extra=extra_rules,
)
def test_adding_a_rule_never_lowers_the_tier_nor_unblocks(data, chosen, added, extra):
    before = snapshot(*(RULES[s] for s in chosen), *extra)
    after = snapshot(*(RULES[s] for s in chosen | {added}), *extra)
    first, second = decide(before, data), decide(after, data)
    assert second.tier.level >= first.tier.level
    assert second.blocked >= first.blocked


@given(data=inputs, extra=extra_rules, more_cases=st.lists(hours_ago, min_size=1, max_size=3))
def test_adding_a_signal_to_the_input_never_lowers_the_tier(data, extra, more_cases):
    policy = snapshot(*RULES.values(), *extra)
    riskier = [
        replace(data, subject_privileged=True),
        replace(data, requester_is_subject=False),
        replace(data, recent_case_times=data.recent_case_times + tuple(more_cases)),
        replace(data, recent_failed_case_times=data.recent_failed_case_times + tuple(more_cases)),
        replace(data, newest_factor_enrolled_at=data.at),
        replace(data, contact_changed_at=data.at),
    ]
    base = rank(decide(policy, data))
    for worse in riskier:
        decision = decide(policy, worse)
        assert decision.tier.level >= base[1]
        assert decision.blocked >= base[0]


@given(data=inputs, extra=extra_rules)
def test_the_same_input_always_gives_the_same_decision(data, extra):
    policy = snapshot(*RULES.values(), *extra)
    assert (
        decide(policy, data)
        == decide(policy, replace(data))
        == decide(snapshot(*RULES.values(), *extra), data)
    )


def test_who_the_requester_is_in_the_organisation_is_not_an_input():
    names = {field.name for field in fields(PolicyInput)}
    assert not names & {"title", "department", "seniority", "urgency", "employee_id", "manager"}
