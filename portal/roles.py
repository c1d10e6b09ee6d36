"""The roles of DESIGN "portal": Django groups, keyed by the slugs CSV imports use."""

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    SECURITY_ADMIN = "security_admin"
    AGENT = "agent"
    MANAGER = "manager"
    APPROVER = "approver"
    AUDITOR = "auditor"

    @property
    def group_name(self) -> str:
        return ROLE_GROUP_NAMES[self]


ROLE_GROUP_NAMES: dict[Role, str] = {
    Role.SECURITY_ADMIN: "Security admin",
    Role.AGENT: "Service desk agent",
    Role.MANAGER: "Manager",
    Role.APPROVER: "Approver",
    Role.AUDITOR: "Auditor",
}

POLICY_MODELS = ("risktier", "sensitiveaction", "riskrule", "entitlement")
ACCESS_VIEW = ["policies.view_accessrequest", "policies.view_grant", "policies.view_entitlement"]
ACCESS_REVIEW = [*ACCESS_VIEW, "policies.review_accessrequest", "policies.change_grant"]

# What each role may do in the admin, as "app_label.codename"; synced to the
# groups after every `migrate`, so a new model's permissions reach their role.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.SECURITY_ADMIN: [
        "portal.view_user",
        "portal.add_user",
        "portal.change_user",
        "portal.view_apitoken",
        "portal.change_apitoken",
        "audit.view_auditevent",
        "auditlog.view_logentry",
        *(
            f"policies.{verb}_{model}"
            for model in POLICY_MODELS
            for verb in ("view", "add", "change", "delete")
        ),
        "verification.view_authenticatordevice",
        "verification.delete_authenticatordevice",
        "otp_email.view_emaildevice",
        "otp_email.delete_emaildevice",
        "verification.view_backupcodedevice",
        "verification.delete_backupcodedevice",
        "verification.view_verificationcase",
        "verification.view_challenge",
        "verification.perform_id_proofing",
        "verification.view_notice",
        "verification.view_smsdevice",
        "verification.delete_smsdevice",
        "verification.view_pushdevice",
        "verification.delete_pushdevice",
        "verification.view_subjecthold",
        "verification.change_subjecthold",
        *ACCESS_REVIEW,
    ],
    Role.AGENT: ["portal.view_user", "verification.open_case"],
    Role.MANAGER: ["portal.view_user", *ACCESS_VIEW, "policies.add_accessrequest"],
    Role.APPROVER: ["portal.view_user", *ACCESS_REVIEW],
    Role.AUDITOR: [
        "portal.view_user",
        "audit.view_auditevent",
        "auditlog.view_logentry",
        *(f"policies.view_{model}" for model in POLICY_MODELS),
        "verification.view_verificationcase",
        "verification.view_challenge",
        "policies.view_accessrequest",
        "policies.view_grant",
        "policies.review_accessrequest",
    ],
}


def sync_role_permissions(group_model: Any, permission_model: Any, *, strict: bool = True) -> None:
    """Create the role groups and give each exactly the permissions listed above.

    Runs from the roles migration and after every `migrate` (PortalConfig), so a
    permission added to ROLE_PERMISSIONS with a new model reaches its role.
    """
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role.group_name)
        permissions = []
        for name in names:
            app_label, codename = name.split(".", 1)
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:
                permissions.append(permission)
            elif strict:
                raise LookupError(f"ROLE_PERMISSIONS names {name!r}, which does not exist")
        group.permissions.set(permissions)
