"""Repeated failed sign-ins pause the login form, per username and per client address
(NIST SP 800-63B 5.2.2, OWASP ASVS 2.2.1).

Failures are counted in the default cache, which every web process shares (Redis in
production, see CACHES). A count lapses LOGIN_LOCKOUT_MINUTES after its last failure;
reaching its limit locks that username or address for LOGIN_LOCKOUT_MINUTES. A locked
form refuses before the password is checked, so its answer says nothing about it."""

import hashlib
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from audit.models import Outcome
from audit.services import record


def _counters(username: str, ip: str) -> list[tuple[str, str, int]]:
    """(scope, cache key, limit) for each thing counted. Usernames are hashed: any text
    may be typed in, and cache keys must stay short and plain."""
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    counters = [("username", f"login-failures:username:{name}", settings.LOGIN_FAILURES_PER_USERNAME)]
    if ip:
        counters.append(("ip", f"login-failures:ip:{ip}", settings.LOGIN_FAILURES_PER_IP))
    return counters


def login_locked_until(*, username: str, ip: str) -> datetime | None:
    locks = cache.get_many([f"{key}:locked" for _, key, _ in _counters(username, ip)])
    return max(locks.values(), default=None)


def login_refusal(*, username: str, until: datetime) -> str:
    """Audit a refused attempt and say, without a hint about the password, when to retry."""
    record(
        "login_throttled",
        outcome=Outcome.BLOCKED,
        actor=username[:150],
        subject=username[:150],
        data={"until": until.isoformat()},
    )
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    return (
        "Too many failed sign-in attempts for this account or from this address. "
        f"Sign-in is paused; try again in {minutes} minute{'s' if minutes > 1 else ''}."
    )


def login_failure_record(*, username: str, ip: str) -> None:
    """Count one failure (wrong password or code); at a limit, lock and audit it."""
    period = settings.LOGIN_LOCKOUT_MINUTES * 60
    for scope, key, limit in _counters(username, ip):
        cache.add(key, 0, period)
        try:
            failures = cache.incr(key)
        except ValueError:  # lapsed between add and incr
            failures = 1
            cache.set(key, failures, period)
        cache.touch(key, period)
        if failures >= limit:
            until = timezone.now() + timedelta(seconds=period)
            cache.set(f"{key}:locked", until, period)
            cache.delete(key)
            record(
                "login_locked",
                outcome=Outcome.BLOCKED,
                actor=username[:150],
                subject=username[:150],
                data={"scope": scope, "failures": failures, "until": until.isoformat()},
            )


def login_success_record(*, username: str) -> None:
    """A full sign-in clears the username's count (not the address's: others may share it)."""
    cache.delete(_counters(username, "")[0][1])
