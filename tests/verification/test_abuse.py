"""Abuse: throttles on challenges and answers, a brute-force run against one subject,
and answers that tell a guesser nothing beyond the documented state."""

import itertools
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from django_otp.oath import totp

from audit.models import AuditEvent
from portal.roles import Role
from tests.factories import UserFactory
from verification.challenges import challenge_answer, challenge_create
from verification.errors import WrongState
from verification.models import CaseState, Challenge, ChallengeState, SubjectHold, VerificationCase

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rates(settings):
    """Set throttle rates for one test; the others keep their configured values."""

    def set_rates(**scopes: str) -> None:
        current = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **current,
            "DEFAULT_THROTTLE_RATES": {**current["DEFAULT_THROTTLE_RATES"], **scopes},
        }

    return set_rates


@pytest.fixture
def agents(api, api_as, agent):
    """The standing agent and three more, each with their own API client."""
    others = [UserFactory(username=f"agent{n}", is_staff=True, roles=[Role.AGENT]) for n in range(2, 5)]
    return [(agent, api)] + [(other, api_as(other)) for other in others]


def totp_codes(enrolled) -> set[str]:
    """Every code the subject's authenticator accepts now (its tolerance is one step each way)."""
    device = enrolled["totp"].device
    return {
        f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=d):06d}"
        for d in range(-device.tolerance, device.tolerance + 1)
    }


def wrong_codes(enrolled):
    right = totp_codes(enrolled)
    return (code for code in (f"{n:06d}" for n in itertools.count()) if code not in right)


def create(client, case_id, method="totp"):
    return client.post(f"/api/v1/verifications/{case_id}/challenges/", {"method": method}, format="json")


def answer(client, challenge_id, code):
    return client.post(f"/api/v1/challenges/{challenge_id}/answer/", {"code": code}, format="json")


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response.json()["code"] == "throttled" and set(response.json()) == {"detail", "code"}
    assert 0 < int(response["Retry-After"]) <= 3600


# Throttles


def test_answers_past_the_callers_rate_get_429_with_retry_after_and_are_audited(
    rates, make_case, api, enrolled, subject
):
    rates(challenge_answer="4/minute", challenge_answer_subject="100/hour")
    challenge = create(api, make_case(max_attempts=10).pk).json()
    codes = wrong_codes(enrolled)
    for _ in range(4):
        assert answer(api, challenge["id"], next(codes)).status_code == 200
    throttled = answer(api, challenge["id"], next(codes))
    assert_throttled(throttled)
    assert int(throttled["Retry-After"]) <= 60
    assert Challenge.objects.get(pk=challenge["id"]).attempts == 4
    event = AuditEvent.objects.get(verb="request_throttled")
    assert (event.actor, event.subject, event.outcome) == ("agent", subject.username, "blocked")
    assert event.data["scope"] == "challenge_answer" and event.data["path"].endswith("/answer/")
    assert event.request_id == throttled["X-Request-ID"]


def test_many_agents_aimed_at_one_subject_share_the_subjects_budget(rates, make_case, agents, enrolled):
    rates(challenge_answer="100/minute", challenge_answer_subject="6/hour")
    challenges = [(client, create(client, make_case(by=who).pk).json()["id"]) for who, client in agents]
    statuses = [
        answer(client, challenge_id, next(wrong_codes(enrolled))).status_code
        for client, challenge_id in challenges * 2
    ]
    assert statuses == [200] * 6 + [429] * 2
    events = AuditEvent.objects.filter(verb="request_throttled")
    assert {event.data["scope"] for event in events} == {"challenge_answer_subject"}
    assert {event.actor for event in events} == {"agent3", "agent4"}


def test_requests_for_cases_a_caller_cannot_see_do_not_spend_the_subjects_budget(
    rates, make_case, api, api_as, agents, enrolled
):
    rates(challenge_answer_subject="2/hour", challenge_create_subject="1/hour")
    case = make_case()
    stranger = agents[1][1]
    for _ in range(5):
        assert create(stranger, case.pk).status_code == 404
    challenge = create(api, case.pk).json()
    for _ in range(5):
        assert answer(stranger, challenge["id"], next(wrong_codes(enrolled))).status_code == 404
    assert answer(api, challenge["id"], next(wrong_codes(enrolled))).status_code == 200


def test_challenge_creation_is_throttled_per_agent_and_per_subject(rates, make_case, agents, enrolled):
    rates(challenge_create="2/hour", challenge_create_subject="3/hour")
    (first, first_api), (second, second_api) = agents[:2]
    assert [create(first_api, make_case(by=first).pk).status_code for _ in range(2)] == [201, 201]
    assert [create(second_api, make_case(by=second).pk).status_code for _ in range(2)] == [201, 429]
    assert_throttled(create(first_api, make_case(by=first).pk))
    scopes = (
        AuditEvent.objects.filter(verb="request_throttled").order_by("seq").values_list("data", flat=True)
    )
    assert [data["scope"] for data in scopes] == [
        "challenge_create_subject",
        "challenge_create",
        "challenge_create_subject",
    ]
    assert Challenge.objects.count() == 3


def test_agents_spending_the_subjects_budget_never_stop_the_subject_from_reporting(
    rates, make_case, api, api_as, subject, enrolled
):
    rates(challenge_answer_subject="1/hour")
    push = create(api, make_case().pk, method="push").json()
    guessed = create(api, make_case().pk).json()["id"]
    codes = wrong_codes(enrolled)
    assert answer(api, guessed, next(codes)).status_code == 200
    assert_throttled(answer(api, guessed, next(codes)))
    mine = api_as(subject)
    reported = mine.post(f"/api/v1/me/challenges/{push['id']}/", {"decision": "report"}, format="json")
    assert reported.status_code == 200
    assert Challenge.objects.get(pk=push["id"]).state != ChallengeState.SENT


def test_rates_and_the_shared_cache_come_from_the_environment(tmp_path):
    show = (
        "from django.conf import settings as s; cache = s.CACHES['default']; "
        "print(s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['challenge_answer'], "
        "cache['BACKEND'], cache['LOCATION'])"
    )
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "REDIS_", "DATABASE_", "THROTTLE_"))
        },
        "DJANGO_SETTINGS_MODULE": "portal.settings.default",
        "SECRET_KEY": "x" * 50,
        "VIGIL_VAR_DIR": str(tmp_path),
    }

    def settings_with(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", show],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    embedded = settings_with(THROTTLE_CHALLENGE_ANSWER="7/minute").stdout.split()
    assert embedded == [
        "7/minute",
        "django.core.cache.backends.filebased.FileBasedCache",
        str(tmp_path / "cache"),
    ]
    production = settings_with(
        REDIS_URL="redis://cache.internal:6379/0", DATABASE_URL="sqlite:///x"
    ).stdout.split()
    assert production[1].endswith("RedisCache") and production[2] == "redis://cache.internal:6379/1"
    # A broker on database 1 pushes the cache to 2: clearing it must never drop queued tasks.
    beside = settings_with(REDIS_URL="redis://cache.internal:6379/1", DATABASE_URL="sqlite:///x")
    assert beside.stdout.split()[2] == "redis://cache.internal:6379/2"
    refused = settings_with(THROTTLE_CHALLENGE_ANSWER="lots")
    assert refused.returncode != 0 and "THROTTLE_CHALLENGE_ANSWER='lots'" in refused.stderr


# Brute force against one subject

TOTAL_ANSWERS = 10_000
API_ANSWERS = 300
UP_FRONT_CHALLENGES = 50


def test_ten_thousand_wrong_answers_never_pass_and_the_subject_ends_escalated_and_on_hold(
    settings, make_case, agents, subject, enrolled, security_admin, run_on_commit
):
    """Several agents open as many challenges as the service lets them before the first
    answer, then spread 10,000 wrong codes over them; the last few hundred go through the
    API. The subject's failure limit, not the number of challenges, bounds the guesses."""
    settings.VERIFICATION_SUBJECT_FAILURE_LIMIT = 10
    codes = wrong_codes(enrolled)
    challenges = []
    with run_on_commit():
        for n in range(UP_FRONT_CHALLENGES):
            who, client = agents[n % len(agents)]
            challenges.append(
                (who, client, challenge_create(case=make_case(by=who), method="totp", actor=who))
            )
        for n in range(TOTAL_ANSWERS - API_ANSWERS):
            who, _, challenge = challenges[n % len(challenges)]
            assert (
                challenge_answer(challenge=challenge, code=next(codes), actor=who).state
                != ChallengeState.PASSED
            )
    with pytest.raises(WrongState, match="on hold"):
        challenge_create(case=make_case(), method="totp", actor=agents[0][0])

    responses = []
    for n in range(API_ANSWERS):
        who, client, challenge = challenges[n % len(challenges)]
        responses.append((who, answer(client, challenge.pk, next(codes))))
    answered = [r for _, r in responses if r.status_code == 200]
    throttled = [(who, r) for who, r in responses if r.status_code != 200]
    assert len(answered) == 30  # THROTTLE_CHALLENGE_ANSWER_SUBJECT's default, 30/hour
    assert {(r.json()["state"], r.json()["attempts_left"]) for r in answered} == {("locked", 0)}
    for _, response in throttled:
        assert_throttled(response)
    # Each agent's first refusal is on record; the rest of their flood writes nothing.
    first_refusals = {}
    for who, response in throttled:
        first_refusals.setdefault(who.username, response["X-Request-ID"])
    audited = AuditEvent.objects.filter(verb="request_throttled").values_list("actor", "request_id")
    assert dict(audited) == first_refusals

    assert not Challenge.objects.filter(state=ChallengeState.PASSED).exists()
    assert set(Challenge.objects.values_list("state", flat=True)) == {ChallengeState.FAILED}
    assert Challenge.objects.count() == UP_FRONT_CHALLENGES
    cases = VerificationCase.objects.exclude(challenges=None)
    assert set(cases.values_list("state", flat=True)) == {CaseState.ESCALATED}
    # Only the guesses before the hold were checked against the authenticator.
    assert AuditEvent.objects.filter(verb="challenge_failed").count() == 10
    assert AuditEvent.objects.filter(verb="challenge_locked").count() == UP_FRONT_CHALLENGES - 1
    assert SubjectHold.objects.filter(subject=subject, reason="10 wrong answers in 24 hours").count() == 1
    assert [
        m.subject for m in mail.outbox if security_admin.email in m.to and "Repeated failures" in m.subject
    ]


# No oracle


def test_a_wrong_code_tells_only_the_state_and_the_attempts_left(api, make_case, enrolled):
    challenge = create(api, make_case().pk).json()
    response = answer(api, challenge["id"], next(wrong_codes(enrolled)))
    assert response.status_code == 200 and response.json() == {"state": "sent", "attempts_left": 2}


def test_a_right_code_on_a_locked_challenge_answers_exactly_like_a_wrong_one(api, make_case, enrolled):
    case = make_case(max_attempts=3)
    challenge = create(api, case.pk).json()
    codes = wrong_codes(enrolled)
    for _ in range(3):
        answer(api, challenge["id"], next(codes))
    right = answer(api, challenge["id"], min(totp_codes(enrolled)))
    wrong = answer(api, challenge["id"], next(codes))
    assert (right.status_code, right.content) == (wrong.status_code, wrong.content)
    assert right.json() == {"state": "locked", "attempts_left": 0}
    assert set(right.headers) == set(wrong.headers)
    assert Challenge.objects.get(pk=challenge["id"]).state == ChallengeState.FAILED
    case.refresh_from_db()
    assert case.state == CaseState.FAILED
    assert not AuditEvent.objects.filter(verb="challenge_passed").exists()


def test_a_right_code_while_the_subject_is_on_hold_locks_like_a_wrong_one(api, make_case, enrolled, subject):
    right_first, wrong_first = (create(api, make_case().pk).json() for _ in range(2))
    SubjectHold.objects.create(subject=subject, reason="reported", until=timezone.now() + timedelta(hours=1))
    right = answer(api, right_first["id"], min(totp_codes(enrolled)))
    wrong = answer(api, wrong_first["id"], next(wrong_codes(enrolled)))
    assert right.status_code == wrong.status_code == 200
    assert right.json() == wrong.json() == {"state": "locked", "attempts_left": 0}
    assert not AuditEvent.objects.filter(verb="challenge_passed").exists()
    assert AuditEvent.objects.filter(verb="challenge_locked", outcome="blocked").count() == 2
    assert set(VerificationCase.objects.values_list("state", flat=True)) == {CaseState.ESCALATED}
    assert Challenge.objects.get(pk=right_first["id"]).attempts == 0  # no attempt spent, none checked


def test_codes_sent_to_an_expired_challenge_get_the_same_answers_right_or_wrong(
    api, make_case, enrolled, time_machine
):
    right_first, wrong_first = (create(api, make_case().pk).json() for _ in range(2))
    time_machine.shift(timedelta(seconds=301))
    right, wrong = min(totp_codes(enrolled)), next(wrong_codes(enrolled))
    first = [answer(api, right_first["id"], right), answer(api, wrong_first["id"], wrong)]
    assert [(r.status_code, r.json()) for r in first] == [(200, {"state": "expired", "attempts_left": 3})] * 2
    again = [answer(api, right_first["id"], wrong), answer(api, wrong_first["id"], right)]
    assert again[0].status_code == again[1].status_code == 409
    assert again[0].json() == again[1].json()
    assert not AuditEvent.objects.filter(verb="challenge_passed").exists()


def test_the_right_number_on_a_locked_push_answers_exactly_like_a_wrong_one(
    api, api_as, make_case, subject, enrolled
):
    push = create(api, make_case(max_attempts=2).pk, method="push").json()
    mine = api_as(subject)
    number = push["match_number"]
    wrong_number = f"{(int(number) + 1) % 1000:03d}"

    def approve(typed):
        return mine.post(
            f"/api/v1/me/challenges/{push['id']}/", {"decision": "approve", "number": typed}, format="json"
        )

    assert [approve(wrong_number).json()["state"] for _ in range(2)] == ["sent", "locked"]
    right, wrong = approve(number), approve(wrong_number)
    assert (right.status_code, right.content) == (wrong.status_code, wrong.content)
    assert Challenge.objects.get(pk=push["id"]).state == ChallengeState.FAILED


def test_the_right_number_while_the_subject_is_on_hold_locks_the_push(
    api, api_as, make_case, subject, enrolled
):
    push = create(api, make_case().pk, method="push").json()
    SubjectHold.objects.create(subject=subject, reason="reported", until=timezone.now() + timedelta(hours=1))
    approve = {"decision": "approve", "number": push["match_number"]}
    answered = api_as(subject).post(f"/api/v1/me/challenges/{push['id']}/", approve, format="json")
    assert answered.json() == {"state": "locked", "attempts_left": 0}
    assert VerificationCase.objects.get().state == CaseState.ESCALATED
    assert not AuditEvent.objects.filter(verb="challenge_passed").exists()
