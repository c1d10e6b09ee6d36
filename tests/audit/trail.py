"""A known audit trail for November 2026: seven service-desk stories whose
figures are worked out by hand in the docstring of `november_trail`."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import time_machine

from audit.models import AuditEvent, Outcome
from audit.services import record

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


class CaseRef:
    """Stands in for a VerificationCase as `record(target=...)` sees one."""

    _meta = SimpleNamespace(label_lower="verification.verificationcase")

    def __init__(self, pk: int) -> None:
        self.pk = pk


def event(when: datetime, verb: str, case: CaseRef | None = None, **fields: Any) -> AuditEvent:
    with time_machine.travel(when, tick=False):
        return record(verb, target=case, **fields)  # type: ignore[arg-type]


class Trail:
    def __init__(self, shift: timedelta) -> None:
        self.shift = shift

    def event(self, when: datetime, verb: str, case: CaseRef | None = None, **fields: Any) -> AuditEvent:
        return event(when + self.shift, verb, case, **fields)

    def case(
        self, case_id: int, opened: datetime, *, agent: str, purpose: str = "service_desk", **common: Any
    ) -> tuple[CaseRef, dict[str, Any]]:
        case = CaseRef(case_id)
        self.event(
            opened,
            "case_opened",
            case,
            actor=agent,
            data={"purpose": purpose, "policy_version": "v1"},
            **common,
        )
        return case, common


def november_trail(shift: timedelta = timedelta(0)) -> None:
    """Cases in November 2026 (one more in October, outside the period):

    1 agent.a / alice  phone   password_reset  verified after 180 s, executed
    2 agent.a / bob    chat    mfa_reset       two wrong codes, failed
    3 agent.b / bob    phone   password_reset  blocked by policy
    4 agent.b / carol  phone   mfa_reset       push reported by the subject
    5 agent.b / dave   walk_in password_reset  verified after 600 s, execution
                                               refused, then expired unused
    6 maria   / maria  portal  access_grant    access-request step-up, verified after 60 s
    7 agent.a / erin   email   password_reset  still open

    November: opened 7, verified 3, failed 1, blocked 1, expired 1, executed 1,
    prevented 4 (blocked, failed, reported, refused), 1 impersonation report,
    median time to verify 180 s. Trust gap: 6 service-desk cases, 5 settled,
    2 verified → 3 of 5 (0.6). Subject with most failures: bob (4).

    `shift` moves the whole story in time (a browser test needs it recent).
    """
    trail = Trail(shift)
    reset, mfa = "password_reset", "mfa_reset"
    old, common = trail.case(
        0,
        datetime(2026, 10, 15, 9, tzinfo=UTC),
        agent="agent.a",
        subject="alice",
        action=reset,
        channel="phone",
        tier=2,
    )
    trail.event(datetime(2026, 10, 15, 9, 2, tzinfo=UTC), "case_verified", old, **common)

    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    case, common = trail.case(1, t, agent="agent.a", subject="alice", action=reset, channel="phone", tier=2)
    trail.event(t + timedelta(seconds=180), "case_verified", case, **common)
    trail.event(t + timedelta(seconds=240), "action_executed", case, actor="agent.a", **common)

    t = datetime(2026, 11, 3, 9, tzinfo=UTC)
    case, common = trail.case(2, t, agent="agent.a", subject="bob", action=mfa, channel="chat", tier=3)
    for minute in (1, 2):
        trail.event(
            t + timedelta(minutes=minute), "challenge_failed", case, outcome=Outcome.FAILURE, **common
        )
    trail.event(t + timedelta(minutes=5), "case_failed", case, outcome=Outcome.FAILURE, **common)

    t = datetime(2026, 11, 4, 12, tzinfo=UTC)
    case, common = trail.case(3, t, agent="agent.b", subject="bob", action=reset, channel="phone", tier=4)
    trail.event(t, "case_blocked", case, outcome=Outcome.BLOCKED, actor="agent.b", **common)

    t = datetime(2026, 11, 5, 15, tzinfo=UTC)
    case, common = trail.case(4, t, agent="agent.b", subject="carol", action=mfa, channel="phone", tier=3)
    trail.event(
        t + timedelta(minutes=1), "push_reported", case, outcome=Outcome.BLOCKED, actor="carol", **common
    )

    t = datetime(2026, 11, 6, 8, tzinfo=UTC)
    case, common = trail.case(5, t, agent="agent.b", subject="dave", action=reset, channel="walk_in", tier=2)
    trail.event(t + timedelta(seconds=600), "case_verified", case, **common)
    trail.event(
        t + timedelta(minutes=20), "action_blocked", case, outcome=Outcome.BLOCKED, actor="agent.a", **common
    )
    trail.event(t + timedelta(hours=1), "case_expired", case, outcome=Outcome.INFO, actor="system", **common)

    t = datetime(2026, 11, 7, 11, tzinfo=UTC)
    case, common = trail.case(
        6,
        t,
        agent="maria",
        subject="maria",
        action="access_grant",
        channel="portal",
        tier=3,
        purpose="access_request",
    )
    trail.event(t + timedelta(seconds=60), "case_verified", case, **common)

    t = datetime(2026, 11, 8, 16, tzinfo=UTC)
    trail.case(7, t, agent="agent.a", subject="erin", action=reset, channel="email", tier=2)
