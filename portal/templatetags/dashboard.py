from typing import Any

from django import template

from portal.dashboard import access_attention, dashboard_context, dashboard_days

register = template.Library()


@register.inclusion_tag("portal/dashboard/dashboard.html", takes_context=True)
def vigil_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    """The dashboard for whoever may read the audit trail (auditors, security admins)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("audit.view_auditevent"):
        return {"show": False}
    return {
        "show": True,
        **dashboard_context(dashboard_days(request.GET.get("days"))),
        "attention": access_attention(request.user),
    }
