from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from policies.engine import UnknownAction
from policies.forms import RiskRuleForm, RiskTierForm, SimulateForm
from policies.models import RiskRule, RiskTier, SensitiveAction
from policies.services import policy_decide, requirements_for


class PolicyAdmin(AuditlogHistoryAdminMixin, admin.ModelAdmin):
    """Every policy object links to its field-by-field history (django-auditlog)."""

    show_auditlog_history_link = True


@admin.register(RiskTier)
class RiskTierAdmin(PolicyAdmin):
    form = RiskTierForm
    list_display = (
        "level",
        "name",
        "required_factors",
        "methods",
        "require_distinct_channel",
        "min_factor_age_days",
        "challenge_ttl_seconds",
        "max_attempts",
        "approvals_required",
    )
    ordering = ("level",)
    fieldsets = (
        (None, {"fields": ("level", "name")}),
        (
            "Proof required",
            {
                "fields": (
                    "required_factors",
                    "allowed_methods",
                    "require_distinct_channel",
                    "require_manager_attestation",
                    "require_id_proofing",
                    "min_factor_age_days",
                )
            },
        ),
        ("Challenges", {"fields": ("challenge_ttl_seconds", "max_attempts", "verification_window_minutes")}),
        (
            "Access and notices",
            {"fields": ("max_grant_minutes", "approvals_required", "notify_security", "cooling_off_hours")},
        ),
    )

    @admin.display(description="Methods")
    def methods(self, tier: RiskTier) -> str:
        return ", ".join(tier.allowed_methods)


@admin.register(SensitiveAction)
class SensitiveActionAdmin(PolicyAdmin):
    list_display = ("code", "name", "base_tier", "executor")
    list_select_related = ("base_tier",)
    change_list_template = "admin/policies/sensitiveaction/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        simulate = path("simulate/", self.admin_site.admin_view(self.simulate_view), name="policies_simulate")
        return [simulate, *super().get_urls()]

    def simulate_view(self, request: HttpRequest) -> HttpResponse:
        """Shows what the policy would decide; creates nothing."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SimulateForm(request.POST or None)
        decision = requirements = None
        if request.method == "POST" and form.is_valid():
            subject = form.cleaned_data["subject"]
            try:
                decision = policy_decide(
                    subject=subject,
                    action_code=form.cleaned_data["action"].code,
                    channel=form.cleaned_data["channel"],
                    requester=form.requester_or_subject(),
                    at=form.cleaned_data["at"],
                )
            except UnknownAction as exc:
                form.add_error("action", str(exc))
            else:
                requirements = requirements_for(decision.tier) if decision.tier else None
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Simulate a decision",
            "opts": self.model._meta,
            "form": form,
            "decision": decision,
            "requirements": requirements,
        }
        return TemplateResponse(request, "admin/policies/simulate.html", context)


@admin.register(RiskRule)
class RiskRuleAdmin(PolicyAdmin):
    form = RiskRuleForm
    list_display = ("name", "enabled", "signal", "effect", "levels", "target_tier")
    list_filter = ("enabled", "signal", "effect")
    list_select_related = ("target_tier",)
    filter_horizontal = ("actions",)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "signal", "effect", "levels", "target_tier", "actions")}),
        (
            "Signal parameters",
            {
                "fields": (
                    "threshold",
                    "window_hours",
                    "channels",
                    "timezone",
                    "business_start",
                    "business_end",
                    "business_days",
                )
            },
        ),
    )


from policies import access_admin  # noqa: E402,F401  (registers the access screens)
