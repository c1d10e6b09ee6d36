"""Reads shared by the API, the agent console and the subject's page."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from verification.devices import factor_usable_from, factors_of
from verification.models import ChallengeState, VerificationCase
from verification.requirements import Method, Requirements


def cases_visible_to(user: Any) -> QuerySet[VerificationCase]:
    """Agents see the cases they opened; auditors and security admins see all."""
    cases = VerificationCase.objects.select_related("subject", "agent")
    if user.has_perm("verification.view_verificationcase"):
        return cases
    return cases.filter(agent=user)


def factors_passed(case: VerificationCase) -> int:
    return len(
        {
            device
            for method, device in case.challenges.filter(state=ChallengeState.PASSED).values_list(
                "method", "device_id"
            )
            if method != Method.MANAGER_ATTESTATION
        }
    )


def factor_options(case: VerificationCase) -> list[dict[str, Any]]:
    """The subject's factors as the agent may see them: kind, name, whether they count. No secrets."""
    requirements = Requirements.from_dict(case.requirements)
    now = timezone.now()
    options = []
    for method, device in factors_of(case.subject):
        usable_from = factor_usable_from(device, case.subject, requirements.min_factor_age_days, now)
        options.append(
            {
                "method": str(method),
                "device": device.persistent_id,
                "name": device.name,
                "allowed": method in requirements.allowed_methods,
                "counts": usable_from is not None and usable_from <= now,
            }
        )
    return options
