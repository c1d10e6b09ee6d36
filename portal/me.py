"""A person's own page: the pushes and attestations waiting for them, answered on
their own logged-in device (password + their own authenticator)."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_otp.decorators import otp_required

from portal.admin_site import PortalLoginForm
from verification.challenges import attempts_left
from verification.errors import VerificationError
from verification.fallback import cooling_off_cancel_by_subject, cooling_off_pending_for
from verification.models import Challenge, ChallengeState
from verification.push import push_decide, push_pending_for


class MeLoginView(auth_views.LoginView):
    template_name = "portal/me_login.html"
    authentication_form = PortalLoginForm
    redirect_authenticated_user = False


@login_required(login_url="me-login")
@otp_required(login_url="me-login")
def me(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/me.html",
        {"pending": push_pending_for(request.user), "cooling": cooling_off_pending_for(request.user)},
    )


@require_POST
@login_required(login_url="me-login")
@otp_required(login_url="me-login")
def me_cancel_reset(request: HttpRequest, case_id: int) -> HttpResponse:
    """Stop a reset someone asked for in your name, during its cooling-off."""
    case = get_object_or_404(cooling_off_pending_for(request.user), pk=case_id)
    try:
        cooling_off_cancel_by_subject(case=case, user=request.user)
    except VerificationError as exc:
        messages.error(request, str(exc))
    else:
        messages.warning(request, "Stopped. Nothing was changed, and your security team is told.")
    return redirect("me")


@require_POST
@login_required(login_url="me-login")
@otp_required(login_url="me-login")
def me_decide(request: HttpRequest, challenge_id: int) -> HttpResponse:
    challenge = get_object_or_404(Challenge.objects.filter(recipient_id=request.user.pk), pk=challenge_id)
    decision = request.POST.get("decision", "")
    try:
        challenge = push_decide(
            challenge=challenge, user=request.user, decision=decision, number=request.POST.get("number", "")
        )
    except VerificationError as exc:
        messages.error(request, str(exc))
        return redirect("me")
    if decision == "approve" and challenge.state != ChallengeState.PASSED:
        messages.error(
            request, f"That is not the number the agent read out ({attempts_left(challenge)} left)."
        )
    elif decision == "report":
        messages.warning(request, "Reported. The request is cancelled and your security team is told.")
    else:
        messages.success(request, f"Done: {challenge.get_state_display().lower()}.")
    return redirect("me")
