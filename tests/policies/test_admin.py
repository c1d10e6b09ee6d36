import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from policies.engine import Effect, Signal
from policies.models import PolicyVersion, RiskRule, RiskTier, SensitiveAction
from tests.otp import otp_login
from verification.models import VerificationCase

pytestmark = pytest.mark.usefixtures("default_policy")

TIER_FORM = {
    "level": "5",
    "name": "Extreme",
    "required_factors": "1",
    "allowed_methods": ["totp", "push"],
    "require_distinct_channel": "on",
    "min_factor_age_days": "7",
    "challenge_ttl_seconds": "120",
    "max_attempts": "3",
    "verification_window_minutes": "5",
    "max_grant_minutes": "30",
    "approvals_required": "2",
    "cooling_off_hours": "24",
}


@pytest.fixture
def admin_client(client, security_admin):
    otp_login(client, security_admin)
    return client


def test_security_admin_adds_a_tier_and_it_is_versioned_audited_and_historied(admin_client, security_admin):
    version = PolicyVersion.objects.get().number
    response = admin_client.post("/admin/policies/risktier/add/", TIER_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    tier = RiskTier.objects.get(level=5)
    assert PolicyVersion.objects.get().number == version + 1
    event = AuditEvent.objects.filter(verb="policy_changed").latest("seq")
    assert event.actor == security_admin.username and event.data["object"] == str(tier)
    assert LogEntry.objects.get_for_object(tier).exists()
    history = admin_client.get(f"/admin/policies/risktier/{tier.pk}/auditlog/")
    assert history.status_code == 200 and b"Extreme" in history.content


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"challenge_ttl_seconds": "10"}, "challenge_ttl_seconds", "greater than or equal to 30"),
        ({"challenge_ttl_seconds": "601"}, "challenge_ttl_seconds", "less than or equal to 600"),
        ({"max_attempts": "0"}, "max_attempts", "greater than or equal to 1"),
        ({"max_attempts": "11"}, "max_attempts", "less than or equal to 10"),
        ({"required_factors": "3"}, "required_factors", "only 2 subject factor method(s) allowed"),
        ({"required_factors": "0"}, "required_factors", "greater than or equal to 1"),
        ({"level": "2"}, "level", "already exists"),
        ({"allowed_methods": []}, "allowed_methods", "required"),
    ],
)
def test_tier_validation_errors_are_shown_on_the_form(admin_client, change, field, message):
    response = admin_client.post("/admin/policies/risktier/add/", {**TIER_FORM, **change})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not RiskTier.objects.filter(name="Extreme").exists()


RULE_FORM = {"name": "new rule", "enabled": "on", "timezone": "UTC"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"signal": "velocity", "effect": "block"}, "threshold", "needs a threshold"),
        ({"signal": "velocity", "effect": "block", "threshold": "3"}, "window_hours", "needs a window"),
        ({"signal": "subject_privileged", "effect": "escalate_by"}, "levels", "number of levels"),
        ({"signal": "subject_privileged", "effect": "escalate_to"}, "target_tier", "needs a target tier"),
        ({"signal": "contact_channel", "effect": "block"}, "channels", "Choose one or more"),
        (
            {
                "signal": "off_hours",
                "effect": "block",
                "timezone": "Mars/Olympus",
                "business_start": "08:00",
                "business_end": "18:00",
                "business_days": ["0"],
            },
            "timezone",
            "Unknown time zone",
        ),
        (
            {
                "signal": "off_hours",
                "effect": "block",
                "business_start": "18:00",
                "business_end": "08:00",
                "business_days": ["0"],
            },
            "business_end",
            "after business start",
        ),
    ],
)
def test_rule_parameters_must_be_complete_for_the_signal(admin_client, fields, field, message):
    response = admin_client.post("/admin/policies/riskrule/add/", {**RULE_FORM, **fields})
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert not RiskRule.objects.filter(name="new rule").exists()


def test_simulate_shows_decision_and_reasons_and_creates_nothing(admin_client, subject):
    subject.is_privileged = True
    subject.save()
    events = AuditEvent.objects.count()
    response = admin_client.post(
        "/admin/policies/sensitiveaction/simulate/",
        {
            "subject": subject.pk,
            "action": "mfa_reset",
            "channel": "phone",
            "at": "2026-11-24T12:00",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Allowed with verification at tier 4 (Critical)" in page
    assert "subject is privileged" in page and "contact over phone" in page
    assert VerificationCase.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_simulate_reports_a_blocked_decision(admin_client, subject, agent):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(6):
        VerificationCase.objects.create(
            subject=subject,
            agent=agent,
            action="password_reset",
            channel="phone",
            expires_at=timezone.now() + timedelta(minutes=5),
        )
    response = admin_client.post(
        "/admin/policies/sensitiveaction/simulate/",
        {
            "subject": subject.pk,
            "action": "password_reset",
            "channel": "walk_in",
        },
    )
    assert "Blocked" in response.content.decode()
    assert "blocked by rule &#x27;6 cases in 24 h&#x27;" in response.content.decode()


def test_simulate_rejects_bad_input_with_form_errors(admin_client):
    response = admin_client.post(
        "/admin/policies/sensitiveaction/simulate/",
        {
            "subject": "999999",
            "action": "make_coffee",
            "channel": "carrier_pigeon",
        },
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"subject", "action", "channel"}


def test_agents_cannot_author_or_simulate(client, agent):
    otp_login(client, agent)
    assert client.get("/admin/policies/sensitiveaction/simulate/").status_code == 403
    assert client.get("/admin/policies/risktier/add/").status_code == 403


def test_auditors_can_read_and_simulate_but_not_edit(client, auditor):
    otp_login(client, auditor)
    assert client.get("/admin/policies/risktier/").status_code == 200
    assert client.get("/admin/policies/sensitiveaction/simulate/").status_code == 200
    assert client.post("/admin/policies/risktier/add/", TIER_FORM).status_code == 403


@pytest.mark.parametrize("model", ["risktier", "sensitiveaction", "riskrule"])
def test_changelists_cost_the_same_queries_however_many_rows(admin_client, model):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(f"/admin/policies/{model}/").status_code == 200
        return len(captured)

    few = queries()
    tiers = [
        RiskTier.objects.create(level=level, name=f"t{level}", allowed_methods=["totp"])
        for level in range(5, 15)
    ]
    for tier in tiers:
        rule = RiskRule.objects.create(
            name=f"to {tier.name}",
            signal=Signal.SUBJECT_PRIVILEGED,
            effect=Effect.ESCALATE_TO,
            target_tier=tier,
        )
        rule.actions.set(SensitiveAction.objects.all())
    SensitiveAction.objects.update(base_tier=tiers[-1])
    assert queries() == few <= 10
