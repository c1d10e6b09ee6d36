from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from policies import signals
        from policies.models import RiskRule, RiskTier, SensitiveAction

        for model in (RiskTier, SensitiveAction):
            auditlog.register(model)
        auditlog.register(RiskRule, m2m_fields={"actions"})
        signals.connect()

        from policies.access import on_requester_verified
        from verification.models import Purpose
        from verification.purposes import register_verified_handler

        register_verified_handler(Purpose.ACCESS_REQUEST, on_requester_verified)
