from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.engine import Decision, UnknownAction
from policies.models import RiskTier
from policies.services import decision_snapshot, policy_decide, requirements_for
from policies.snapshot import snapshot_current
from verification.models import AuthenticatorDevice, CaseState, VerificationCase
from verification.requirements import Method

pytestmark = pytest.mark.usefixtures("default_policy")

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def decide_for(subject, requester=None, action="password_reset", channel="walk_in", at=TUESDAY_NOON):
    return policy_decide(
        subject=subject, action_code=action, channel=channel, requester=requester or subject, at=at
    )


def test_warm_snapshot_decides_without_touching_the_database(django_assert_num_queries):
    from policies.engine import PolicyInput, decide

    snapshot_current()
    data = PolicyInput(
        action="mfa_reset",
        channel="phone",
        at=TUESDAY_NOON,
        subject_privileged=True,
        requester_is_subject=True,
    )
    with django_assert_num_queries(0):
        decision = decide(snapshot_current(), data)
    assert decision.tier.level == 4


def test_building_the_input_costs_a_constant_number_of_queries(subject, agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            decide_for(subject)
        return len(captured)

    decide_for(subject)
    few = queries()
    for _ in range(5):
        AuthenticatorDevice.objects.create(user=subject, name="phone", confirmed=True)
        VerificationCase.objects.create(
            subject=subject, agent=agent, action="password_reset", channel="phone", expires_at=TUESDAY_NOON
        )
    assert queries() == few <= 7  # one per factor type, one for recent cases


printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=120)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=printable, department=printable, employee_id=printable.map(lambda text: text[:40]))
def test_title_department_and_rank_change_nothing(subject, manager, title, department, employee_id):
    def decision_when(title: str, department: str, employee_id: str) -> Decision:
        for person in (subject, manager):
            person.title, person.department, person.employee_id = title, department, employee_id
            person.save()
        return decide_for(subject, requester=manager)

    assert decision_when(title, department, employee_id) == decision_when("", "", "")


def test_signals_are_read_from_the_database(subject, agent):
    assert decide_for(subject).tier.level == 2
    subject.is_privileged = True
    subject.save()
    assert decide_for(subject).tier.level == 3
    subject.is_privileged = False
    subject.contact_changed_at = TUESDAY_NOON - timedelta(days=3)
    subject.save()
    assert "contact details changed" in decide_for(subject).reasons[-1]


def test_newly_enrolled_factor_escalates(subject):
    with time_machine.travel(TUESDAY_NOON - timedelta(days=2), tick=False):
        AuthenticatorDevice.objects.create(user=subject, name="new phone", confirmed=True)
    decision = decide_for(subject)
    assert decision.tier.level == 3
    assert "factor was enrolled" in decision.reasons[-1]


def test_recent_cases_drive_velocity_and_failures(subject, agent):
    def case(hours_ago: int, state: str) -> None:
        created = TUESDAY_NOON - timedelta(hours=hours_ago)
        VerificationCase.objects.create(
            subject=subject,
            agent=agent,
            action="password_reset",
            channel="phone",
            state=state,
            created_at=created,
            expires_at=created,
        )

    case(2, CaseState.VERIFIED)
    case(3, CaseState.FAILED)
    assert decide_for(subject).tier.level == 2
    case(4, CaseState.FAILED)
    decision = decide_for(subject)
    assert decision.tier.level == 4
    assert any("failed case(s)" in reason for reason in decision.reasons)


def test_policy_edit_is_seen_by_the_next_decision(subject, django_capture_on_commit_callbacks):
    version = decide_for(subject).policy_version
    elevated = RiskTier.objects.get(level=2)
    elevated.name = "Elevated (edited)"
    with django_capture_on_commit_callbacks(execute=True):
        elevated.save()
    decision = decide_for(subject)
    assert decision.tier.name == "Elevated (edited)"
    assert decision.policy_version != version


def test_requirements_and_snapshot_for_verification(subject):
    decision = decide_for(subject, action="role_escalation")
    requirements = requirements_for(decision.tier)
    assert requirements.factors == 2
    assert requirements.manager_attestation
    assert Method.EMAIL_OTP not in requirements.methods
    snap = decision_snapshot(decision)
    assert snap["tier"] == {"level": 4, "name": "Critical"}
    assert snap["policy_version"] == decision.policy_version and snap["reasons"]


def test_default_policy_never_lets_email_alone_verify_above_the_lowest_tier():
    for tier in RiskTier.objects.filter(level__gt=1):
        assert "email_otp" not in tier.allowed_methods or tier.required_factors >= 2


def test_unknown_action_is_refused(subject):
    with pytest.raises(UnknownAction):
        decide_for(subject, action="make_coffee")
