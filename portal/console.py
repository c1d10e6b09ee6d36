"""The agent console in the admin: verify a caller, then act (DESIGN "portal").
Views parse input and call services; every step is audited by the services."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import site as admin_site
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from policies.engine import UnknownAction
from policies.models import SensitiveAction
from policies.services import verification_open
from verification.actions import EXECUTORS, action_execute
from verification.cases import case_cancel, case_escalate
from verification.challenges import attempts_left, challenge_answer, challenge_create, public_state
from verification.errors import VerificationError
from verification.fallback import id_proofing_record
from verification.models import CaseState, ChallengeState, VerificationCase
from verification.requirements import Channel
from verification.selectors import cases_visible_to, factor_options, factors_passed


class OpenCaseForm(forms.Form):
    subject = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        widget=AutocompleteSelect(VerificationCase._meta.get_field("subject"), admin_site),
        help_text="The person the caller claims to be.",
    )
    action = forms.ChoiceField(choices=())
    channel = forms.ChoiceField(choices=Channel.choices, help_text="How the request reached you.")
    ticket = forms.CharField(max_length=64, required=False)
    lost_factors = forms.BooleanField(
        required=False,
        label="The caller has lost all their factors",
        help_text="Stricter path: manager attestation, in-person ID check, then a cooling-off period.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        action_field = self.fields["action"]
        assert isinstance(action_field, forms.ChoiceField)
        action_field.choices = [
            (action.code, action.name) for action in SensitiveAction.objects.filter(code__in=EXECUTORS)
        ]


def _require_agent(request: HttpRequest) -> None:
    if not request.user.has_perm("verification.open_case"):
        raise PermissionDenied


def console_open(request: HttpRequest) -> HttpResponse:
    _require_agent(request)
    form = OpenCaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        try:
            case = verification_open(
                subject=values["subject"],
                agent=request.user,
                action_code=values["action"],
                channel=values["channel"],
                ticket=values["ticket"],
                lost_factors=values["lost_factors"],
            )
        except (VerificationError, UnknownAction) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("admin:console-case", case_id=case.pk)
    context = {
        **admin_site.each_context(request),
        "title": "Verify a caller",
        "form": form,
        "media": form.media,
    }
    return TemplateResponse(request, "admin/console/open.html", context)


def _handle_case_post(request: HttpRequest, case: VerificationCase) -> None:
    op = request.POST.get("op", "")
    if op == "challenge":
        challenge = challenge_create(
            case=case,
            method=request.POST.get("method", ""),
            actor=request.user,
            device_id=request.POST.get("device") or None,
        )
        messages.success(
            request,
            f"Challenge {challenge.pk} ({challenge.get_method_display()}) is "
            f"{challenge.get_state_display().lower()}.",
        )
    elif op == "answer":
        challenge = get_object_or_404(case.challenges, pk=request.POST.get("challenge"))
        challenge = challenge_answer(
            challenge=challenge, code=request.POST.get("code", ""), actor=request.user
        )
        state = public_state(challenge)
        level = messages.SUCCESS if state == "passed" else messages.ERROR
        messages.add_message(request, level, f"Code {state}; {attempts_left(challenge)} attempt(s) left.")
    elif op == "execute":
        params = {key: request.POST.get(key, "") for key in ("email", "phone")}
        case = action_execute(case=case, actor=request.user, params=params)
        messages.success(request, str(case.execution_result.get("message", "Done.")))
    elif op == "escalate":
        case_escalate(case=case, actor=request.user, note=request.POST.get("note", ""))
        messages.warning(request, "Escalated to security.")
    elif op == "cancel":
        case_cancel(case=case, actor=request.user, reason="cancelled by the agent")
        messages.info(request, "Case cancelled.")
    elif op == "proof":
        id_proofing_record(
            case=case,
            verifier=request.user,
            verifier_code=request.POST.get("verifier_code", ""),
            evidence=request.POST.get("evidence", ""),
        )
        messages.success(request, "ID proofing recorded.")
    else:
        messages.error(request, "Unknown step.")


def console_case(request: HttpRequest, case_id: int) -> HttpResponse:
    # Agents see their cases, requesters their own step-up, verifiers every case.
    may_proof = request.user.has_perm("verification.perform_id_proofing")
    visible = VerificationCase.objects.all() if may_proof else cases_visible_to(request.user)
    case = get_object_or_404(visible.select_related("subject", "agent"), pk=case_id)
    if request.method == "POST":
        # Seeing a case is not running it: its agent takes the steps, an ID verifier the proofing.
        runs_it = may_proof if request.POST.get("op") == "proof" else request.user.pk == case.agent_id
        if not runs_it:
            raise PermissionDenied
        try:
            _handle_case_post(request, case)
        except VerificationError as exc:
            messages.error(request, str(exc))
        return redirect("admin:console-case", case_id=case.pk)
    challenges = list(case.challenges.select_related("recipient").order_by("id"))
    for challenge in challenges:
        challenge.public_state = public_state(challenge)  # type: ignore[attr-defined]
        challenge.left = attempts_left(challenge)  # type: ignore[attr-defined]
    waiting = any(c.state in (ChallengeState.QUEUED, ChallengeState.SENT) for c in challenges)
    context = {
        **admin_site.each_context(request),
        "title": f"Case {case.pk}: {case.action.replace('_', ' ')} for {case.subject.get_username()}",
        "case": case,
        "challenges": challenges,
        "factors": factor_options(case),
        "factors_passed": factors_passed(case),
        "is_agent": request.user.pk == case.agent_id,
        "may_proof": may_proof and case.requirements.get("id_proofing") and case.state == CaseState.OPEN,
        "refresh": waiting and case.state == CaseState.OPEN,
        "attestation_allowed": "manager_attestation" in case.requirements.get("methods", []),
    }
    return TemplateResponse(request, "admin/console/case.html", context)
