"""The verification API of CONTRACT: agents open cases, challenge, answer, execute;
subjects answer pushes. Views parse and render; services decide."""

from typing import Any

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from policies.services import verification_open
from portal.api.parsing import parsed
from portal.api.throttles import THROTTLES, CallerThrottle
from verification.actions import action_execute
from verification.cases import case_cancel, case_escalate
from verification.challenges import attempts_left, challenge_answer, challenge_create, public_state
from verification.models import Challenge, VerificationCase
from verification.push import push_decide, push_pending_for
from verification.requirements import Channel, Method
from verification.selectors import cases_visible_to, factor_options, factors_passed


class ChallengeOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField()
    state = serializers.SerializerMethodField()
    recipient = serializers.CharField(source="recipient.username")
    expires_at = serializers.DateTimeField()
    attempts_left = serializers.SerializerMethodField()
    match_number = serializers.SerializerMethodField()
    delivery_error = serializers.CharField()

    def get_state(self, challenge: Challenge) -> str:
        return public_state(challenge)

    def get_attempts_left(self, challenge: Challenge) -> int:
        return attempts_left(challenge)

    def get_match_number(self, challenge: Challenge) -> str | None:
        return challenge.match_number or None


class CaseOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    subject = serializers.CharField(source="subject.username")
    agent = serializers.CharField(source="agent.username")
    action = serializers.CharField()
    channel = serializers.CharField()
    ticket = serializers.CharField()
    tier = serializers.SerializerMethodField()
    reasons = serializers.SerializerMethodField()
    requirements = serializers.SerializerMethodField()
    factors_passed = serializers.SerializerMethodField()
    lost_factors = serializers.BooleanField()
    expires_at = serializers.DateTimeField()
    verified_until = serializers.DateTimeField(allow_null=True)
    usable_from = serializers.DateTimeField(allow_null=True)
    closed_reason = serializers.CharField()
    execution_result = serializers.JSONField()

    def get_tier(self, case: VerificationCase) -> dict[str, Any] | None:
        return case.decision.get("tier")

    def get_reasons(self, case: VerificationCase) -> list[str]:
        return list(case.decision.get("reasons", []))

    def get_requirements(self, case: VerificationCase) -> dict[str, Any]:
        req = case.requirements
        return {
            "factors": req.get("factors"),
            "methods": req.get("methods"),
            "manager_attestation": req.get("manager_attestation"),
            "id_proofing": req.get("id_proofing"),
        }

    def get_factors_passed(self, case: VerificationCase) -> int:
        return factors_passed(case)


class CaseDetailSerializer(CaseOutSerializer):
    """The case as an agent follows it: its challenges and the subject's factors (no secrets)."""

    challenges = serializers.SerializerMethodField()
    factors = serializers.SerializerMethodField()

    def get_challenges(self, case: VerificationCase) -> list[dict[str, Any]]:
        challenges = case.challenges.select_related("recipient").order_by("id")
        return ChallengeOutSerializer(challenges, many=True).data  # type: ignore[return-value]

    def get_factors(self, case: VerificationCase) -> list[dict[str, Any]]:
        return factor_options(case)


class CaseInSerializer(serializers.Serializer):
    subject = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())
    action = serializers.CharField(max_length=40)
    channel = serializers.ChoiceField(choices=Channel.choices)
    ticket = serializers.CharField(max_length=64, allow_blank=True, default="")
    lost_factors = serializers.BooleanField(default=False)


class VerificationListView(APIView):
    @extend_schema(request=CaseInSerializer, responses={201: CaseOutSerializer})
    def post(self, request: Request) -> Response:
        data = parsed(CaseInSerializer, request.data)
        values = data
        case = verification_open(
            subject=values["subject"],
            agent=request.user,
            action_code=values["action"],
            channel=values["channel"],
            ticket=values["ticket"],
            lost_factors=values["lost_factors"],
        )
        return Response(CaseOutSerializer(case).data, status=status.HTTP_201_CREATED)


def _case_for(request: Request, case_id: int) -> VerificationCase:
    return get_object_or_404(cases_visible_to(request.user), pk=case_id)


class VerificationDetailView(APIView):
    @extend_schema(responses=CaseDetailSerializer)
    def get(self, request: Request, case_id: int) -> Response:
        return Response(CaseDetailSerializer(_case_for(request, case_id)).data)


class ChallengeInSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Method.choices)
    device = serializers.CharField(max_length=100, required=False, allow_blank=True)


def _subject_of(challenges: Any, challenge_id: int) -> Any:
    found = challenges.select_related("case__subject").filter(pk=challenge_id).first()
    return found.case.subject if found else None


class ChallengeCreateView(APIView):
    throttle_classes = THROTTLES
    throttle_scope = "challenge_create"

    def throttle_subject(self, request: Request) -> Any:
        visible = cases_visible_to(request.user).select_related("subject")
        case = visible.filter(pk=self.kwargs["case_id"]).first()
        return case.subject if case else None

    @extend_schema(request=ChallengeInSerializer, responses={201: ChallengeOutSerializer})
    def post(self, request: Request, case_id: int) -> Response:
        data = parsed(ChallengeInSerializer, request.data)
        challenge = challenge_create(
            case=_case_for(request, case_id),
            method=data["method"],
            actor=request.user,
            device_id=data.get("device") or None,
        )
        return Response(ChallengeOutSerializer(challenge).data, status=status.HTTP_201_CREATED)


class AnswerInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, trim_whitespace=True)


class AnswerOutSerializer(serializers.Serializer):
    state = serializers.CharField()
    attempts_left = serializers.IntegerField()


def _answerable_by_agent(request: Request) -> Any:
    return Challenge.objects.filter(case__in=cases_visible_to(request.user))


class ChallengeAnswerView(APIView):
    throttle_classes = THROTTLES
    throttle_scope = "challenge_answer"

    def throttle_subject(self, request: Request) -> Any:
        return _subject_of(_answerable_by_agent(request), self.kwargs["challenge_id"])

    @extend_schema(request=AnswerInSerializer, responses=AnswerOutSerializer)
    def post(self, request: Request, challenge_id: int) -> Response:
        data = parsed(AnswerInSerializer, request.data)
        challenge = get_object_or_404(_answerable_by_agent(request), pk=challenge_id)
        challenge = challenge_answer(challenge=challenge, code=data["code"], actor=request.user)
        return Response({"state": public_state(challenge), "attempts_left": attempts_left(challenge)})


class ExecuteInSerializer(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict, help_text="contact_change: {email, phone}")


class ExecuteOutSerializer(serializers.Serializer):
    state = serializers.CharField()
    result = serializers.JSONField()


class VerificationExecuteView(APIView):
    @extend_schema(request=ExecuteInSerializer, responses=ExecuteOutSerializer)
    def post(self, request: Request, case_id: int) -> Response:
        data = parsed(ExecuteInSerializer, request.data)
        case = action_execute(case=_case_for(request, case_id), actor=request.user, params=data["params"])
        return Response({"state": case.state, "result": case.execution_result})


class NoteInSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=200, allow_blank=True, default="")


class VerificationEscalateView(APIView):
    @extend_schema(request=NoteInSerializer, responses=CaseOutSerializer)
    def post(self, request: Request, case_id: int) -> Response:
        data = parsed(NoteInSerializer, request.data)
        case = case_escalate(case=_case_for(request, case_id), actor=request.user, note=data["note"])
        return Response(CaseOutSerializer(case).data)


class VerificationCancelView(APIView):
    @extend_schema(request=NoteInSerializer, responses=CaseOutSerializer)
    def post(self, request: Request, case_id: int) -> Response:
        data = parsed(NoteInSerializer, request.data)
        case = case_cancel(
            case=_case_for(request, case_id),
            actor=request.user,
            reason=data["note"] or "cancelled by the agent",
        )
        return Response(CaseOutSerializer(case).data)


class PendingChallengeSerializer(serializers.Serializer):
    """What the recipient sees: never the number, which they must hear from the agent."""

    id = serializers.IntegerField()
    method = serializers.CharField()
    action = serializers.CharField(source="case.action")
    agent = serializers.CharField(source="case.agent.username")
    subject = serializers.CharField(source="case.subject.username")
    ticket = serializers.CharField(source="case.ticket")
    asked_at = serializers.DateTimeField(source="created_at")
    expires_at = serializers.DateTimeField()


class MyChallengesView(APIView):
    @extend_schema(responses=PendingChallengeSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(PendingChallengeSerializer(push_pending_for(request.user), many=True).data)


class DecisionInSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "deny", "report"])
    number = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")


def _answerable_by_recipient(request: Request) -> Any:
    return Challenge.objects.filter(recipient_id=request.user.pk)


class MyChallengeDecideView(APIView):
    """The recipient's own answer budget only: agents' guesses about a subject must never
    stop the subject from denying or reporting (attempts per challenge still bound it)."""

    throttle_classes = [CallerThrottle]
    throttle_scope = "challenge_answer"

    def throttle_subject(self, request: Request) -> Any:
        return _subject_of(_answerable_by_recipient(request), self.kwargs["challenge_id"])

    @extend_schema(request=DecisionInSerializer, responses=AnswerOutSerializer)
    def post(self, request: Request, challenge_id: int) -> Response:
        data = parsed(DecisionInSerializer, request.data)
        challenge = get_object_or_404(_answerable_by_recipient(request), pk=challenge_id)
        challenge = push_decide(
            challenge=challenge,
            user=request.user,
            decision=data["decision"],
            number=data["number"],
        )
        return Response({"state": public_state(challenge), "attempts_left": attempts_left(challenge)})
