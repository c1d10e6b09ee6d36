"""Admin screens for access: entitlements, requests (submit, waiting for me), grants."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from policies.access import access_request_decide, access_request_submit, requests_awaiting
from policies.grants import grant_manual_complete, grant_retry_deprovision, grant_revoke
from policies.models import AccessRequest, Approval, Entitlement, Grant, RequestState
from verification.errors import VerificationError


@admin.register(Entitlement)
class EntitlementAdmin(admin.ModelAdmin):
    list_display = ("name", "system", "tier", "max_minutes", "provisioner", "owner")
    list_select_related = ("tier", "owner")
    list_filter = ("provisioner", "tier", "system")
    search_fields = ("name", "system")
    autocomplete_fields = ("owner",)
    filter_horizontal = ("conflicts",)


class EntitlementChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} — tier {obj.tier.level}, up to {obj.cap_minutes()} min"


class AccessRequestForm(forms.Form):
    beneficiary = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), help_text="Yourself or one of your reports."
    )
    entitlement = EntitlementChoiceField(queryset=Entitlement.objects.select_related("tier"))
    duration_minutes = forms.IntegerField(
        min_value=1, help_text="Capped per entitlement (shown in the list)."
    )
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    ticket = forms.CharField(max_length=64, required=False)
    starts_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty to start as soon as approved.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = get_user_model().objects.filter(Q(pk=user.pk) | Q(manager=user), is_active=True)
        beneficiary = self.fields["beneficiary"]
        assert isinstance(beneficiary, forms.ModelChoiceField)
        beneficiary.queryset = people.order_by("username")


class ApprovalInline(admin.TabularInline):
    model = Approval
    fields = ("approver", "decision", "comment", "decided_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "entitlement",
        "beneficiary",
        "requester",
        "duration_minutes",
        "state",
        "tier_level",
    )
    list_filter = ("state", "entitlement")
    list_select_related = ("entitlement", "beneficiary", "requester")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "requester",
        "beneficiary",
        "entitlement",
        "justification",
        "ticket",
        "duration_minutes",
        "starts_at",
        "extends",
        "state",
        "verification",
        "tier_level",
        "approvals_required",
        "created_at",
        "respond_by",
        "decided_at",
        "closed_reason",
    )
    inlines = [ApprovalInline]
    change_list_template = "admin/policies/accessrequest/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessRequest]:
        requests = super().get_queryset(request)
        if request.user.has_perm("policies.review_accessrequest"):
            return requests
        return requests.filter(Q(requester=request.user) | Q(beneficiary=request.user))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        waiting = path(
            "waiting/", self.admin_site.admin_view(self.waiting_view), name="policies_access_waiting"
        )
        return [waiting, *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """A manager asks for their report (or themselves), then passes their own step-up."""
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = AccessRequestForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                created = access_request_submit(requester=request.user, **form.cleaned_data)
            except VerificationError as exc:
                form.add_error(None, str(exc))
            else:
                if created.verification_id and created.state == RequestState.PENDING_VERIFICATION:
                    messages.info(request, "Request filed. Pass your step-up to send it to the approvers.")
                    return redirect("admin:console-case", case_id=created.verification_id)
                messages.error(request, f"Request {created.state}: {created.closed_reason}")
                return redirect("admin:policies_accessrequest_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Request temporary access",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/policies/accessrequest/submit.html", context)

    def waiting_view(self, request: HttpRequest) -> HttpResponse:
        """Requests waiting for this person's decision; eligibility is checked again on deciding."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            pending = get_object_or_404(AccessRequest, pk=request.POST.get("request"))
            try:
                decided = access_request_decide(
                    request=pending,
                    approver=request.user,
                    approve=request.POST.get("decision") == "approve",
                    comment=request.POST.get("comment", ""),
                    step_up_code=request.POST.get("step_up_code", ""),
                )
            except VerificationError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Request {decided.pk}: {decided.get_state_display().lower()}.")
            return redirect("admin:policies_access_waiting")
        waiting = (
            requests_awaiting(request.user)
            .select_related("entitlement__tier", "requester", "beneficiary")
            .order_by("created_at")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Access requests waiting for me",
            "waiting": waiting,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/policies/accessrequest/waiting.html", context)


class GrantAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("removal_failing", "Access removal failing"), ("manual", "Manual step waiting")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant]:
        if self.value() == "removal_failing":
            return queryset & Grant.objects.removal_failing()
        if self.value() == "manual":
            return queryset & Grant.objects.manual_waiting()
        return queryset


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "entitlement",
        "starts_at",
        "expires_at",
        "time_left",
        "state_now",
        "provisioning",
        "provisioning_error",
    )
    list_filter = (GrantAttentionFilter, "provisioning", "entitlement")
    list_select_related = ("user", "entitlement")
    date_hierarchy = "starts_at"
    search_fields = ("=user__username",)
    show_full_result_count = False
    actions = ("revoke_grants", "retry_deprovision", "mark_manual_step_done")
    readonly_fields = (
        "request",
        "user",
        "entitlement",
        "starts_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
        "provisioning",
        "provisioning_error",
        "deprovision_attempts",
        "ended_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        grants = super().get_queryset(request)
        if request.user.has_perm("policies.review_accessrequest"):
            return grants
        return grants.filter(Q(user=request.user) | Q(request__requester=request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Time left")
    def time_left(self, grant: Grant) -> str:
        left = grant.ends_at() - timezone.now()
        return str(left - timedelta(microseconds=left.microseconds)) if left.total_seconds() > 0 else "—"

    @admin.display(description="State")
    def state_now(self, grant: Grant) -> str:
        return grant.state()

    def _each(self, request: HttpRequest, grants: QuerySet[Grant], step: Any, done: str) -> None:
        count = 0
        for grant in grants:
            try:
                step(grant)
                count += 1
            except VerificationError as exc:
                messages.error(request, f"Grant {grant.pk}: {exc}")
        if count:
            messages.success(request, f"{count} grant(s) {done}.")

    @admin.action(description="Revoke the selected grants now", permissions=["change"])
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        reason = f"revoked in the admin by {request.user.get_username()}"
        self._each(
            request, queryset, lambda g: grant_revoke(grant=g, actor=request.user, reason=reason), "revoked"
        )

    @admin.action(description="Retry taking the access away", permissions=["change"])
    def retry_deprovision(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        self._each(
            request, queryset, lambda g: grant_retry_deprovision(grant=g, actor=request.user), "retried"
        )

    @admin.action(description="Record the manual step as done", permissions=["change"])
    def mark_manual_step_done(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        self._each(
            request, queryset, lambda g: grant_manual_complete(grant=g, actor=request.user), "completed"
        )
