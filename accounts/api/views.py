from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from ..selectors import api_token_list
from ..services import api_token_create, api_token_revoke
from .serializers import ApiTokenCreateSerializer, ApiTokenSerializer, IssuedApiTokenSerializer


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. `DELETE` revokes (the row stays for the audit trail)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        # Tokens are personal: the funnel here is ownership, nobody sees another user's tokens.
        return api_token_list(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: IssuedApiTokenSerializer})
    def create(self, request):
        params = ApiTokenCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        issued = api_token_create(user=request.user, **params.validated_data)
        data = IssuedApiTokenSerializer(issued.token).data | {"token": issued.raw}
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        api_token_revoke(token=instance, actor=self.request.user)
