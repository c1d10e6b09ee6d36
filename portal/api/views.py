from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmISerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class WhoAmIView(APIView):
    """The authenticated caller and their roles: how an integration checks its token."""

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        roles = sorted(user.groups.values_list("name", flat=True))
        return Response(WhoAmISerializer({"username": user.get_username(), "roles": roles}).data)


@extend_schema(exclude=True)
class UnknownEndpointView(APIView):
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise exceptions.NotFound()
