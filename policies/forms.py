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
        help_texts = {
            "name": "Shown to agents and in every decision's reasons.",
            "require_manager_attestation": "The subject's manager confirms the request as one of the steps.",
            "require_id_proofing": "Identity is checked by the ID-proofing provider as one of the steps.",
            "approvals_required": "Approvers needed for an access grant at this tier "
            "(never the requester, never the beneficiary).",
        }


SIGNAL_HELP = {
    Signal.SUBJECT_PRIVILEGED: "the subject is marked privileged",
    Signal.FACTOR_RECENTLY_ENROLLED: "the subject's newest factor is younger than threshold days",
    Signal.CONTACT_RECENTLY_CHANGED: "the subject's email or phone changed less than threshold days ago",
    Signal.OFF_HOURS: "the request comes outside the business days and hours, in the time zone",
    Signal.VELOCITY: "threshold or more cases for the subject within window hours",
    Signal.REQUESTER_NOT_SUBJECT: "someone asks on the subject's behalf",
    Signal.CONTACT_CHANNEL: "the request comes over one of the channels (voice and chat are deepfake-prone)",
    Signal.RECENT_FAILED_CASES: "threshold or more failed cases for the subject within window hours",
}


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
        help_texts = {
            "name": "Shown in every decision's reasons when the rule fires.",
            "enabled": "Only enabled rules are part of the policy.",
            "signal": "Fires when: "
            + "; ".join(f"{signal.value.replace('_', ' ')}: {why}" for signal, why in SIGNAL_HELP.items()),
            "effect": "Raise by a number of tiers, raise to a tier (never lowers), or refuse outright.",
        }


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
