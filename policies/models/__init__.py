from policies.models.access import AccessRequest, Approval, Entitlement, Grant, Provisioner, RequestState
from policies.models.policy import (
    SUBJECT_FACTOR_METHODS,
    PolicyVersion,
    RiskRule,
    RiskTier,
    SensitiveAction,
)

__all__ = [
    "SUBJECT_FACTOR_METHODS",
    "AccessRequest",
    "Approval",
    "Entitlement",
    "Grant",
    "PolicyVersion",
    "Provisioner",
    "RequestState",
    "RiskRule",
    "RiskTier",
    "SensitiveAction",
]
