from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from policies.engine import Signal
from policies.models import RiskRule, RiskTier, SensitiveAction
from verification.requirements import Channel, Method

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class RiskTierForm(forms.ModelForm):
    allowed_methods = forms.MultipleChoiceField(
        choices=Method.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Email codes are the weakest method: do not let them alone verify a high tier.",
    )

    class Meta:
        model = RiskTier
        fields = (
            "level",
            "name",
            "required_factors",
            "allowed_methods",
            "require_distinct_channel",
            "require_manager_attestation",
            "require_id_proofing",
            "min_factor_age_days",
            "challenge_ttl_seconds",
            "max_attempts",
            "verification_window_minutes",
            "max_grant_minutes",
            "approvals_required",
            "notify_security",
            "cooling_off_hours",
        )


class RiskRuleForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Contact channel: the channels that fire this rule.",
    )
    business_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Off-hours: working weekdays.",
    )

    class Meta:
        model = RiskRule
        fields = (
            "name",
            "enabled",
            "signal",
            "effect",
            "levels",
            "target_tier",
            "actions",
            "threshold",
            "window_hours",
            "channels",
            "timezone",
            "business_start",
            "business_end",
            "business_days",
        )
        help_texts = {"signal": "; ".join(s.value for s in Signal)}


class SimulateForm(forms.Form):
    """Everything the policy may consider, and nothing it may not."""

    subject = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"))
    action = forms.ModelChoiceField(queryset=SensitiveAction.objects.order_by("code"), to_field_name="code")
    channel = forms.ChoiceField(choices=Channel.choices)
    requester = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"),
        required=False,
        help_text="Who asks; leave empty when it is the subject.",
    )
    at = forms.DateTimeField(
        label="Time",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty for now (in the server's time zone).",
    )

    def clean_at(self) -> datetime:
        return self.cleaned_data.get("at") or timezone.now()

    def requester_or_subject(self) -> Any:
        return self.cleaned_data["requester"] or self.cleaned_data["subject"]
