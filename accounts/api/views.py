from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.services import record_denied

from .. import services
from ..models import ApiToken, Role, Team
from ..selectors import (
    api_token_list,
    permission_code,
    permission_label,
    role_list,
    role_permission_choices,
    team_list,
    user_list,
)
from ..services import api_token_create, api_token_revoke
from .serializers import (
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    IssuedApiTokenSerializer,
    PermissionChoiceSerializer,
    RoleSerializer,
    TeamMemberSerializer,
    TeamSerializer,
    UserAccessSerializer,
    UserSerializer,
)


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. `DELETE` revokes (the row stays for the audit trail)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApiToken.objects.none()
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


# -- admin --------------------------------------------------------------------------------------
class GlobalPermission(permissions.BasePermission):
    """Admin endpoints: each viewset action needs one global permission (`required`; None means
    any signed-in user, the queryset then narrows). Refusals are audited."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        perm = view.required.get(view.action, view.required.get("*"))
        if perm is None or user.has_perm(perm):
            return True
        record_denied(actor=user, model=view.audit_model, action=view.action or "", reason=perm)
        return False


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Users (Admin; Auditor read-only). PATCH `is_active`, `roles`, `teams` (lists of names).
    Deactivating revokes the user's API tokens and ends their sessions."""

    permission_classes = [GlobalPermission]
    required = {
        "*": "auth.view_user",
        "partial_update": "auth.change_user",
        "revoke_tokens": "auth.change_user",
    }
    audit_model = get_user_model()
    serializer_class = UserSerializer
    http_method_names = ["get", "patch", "post", "head", "options"]  # post: revoke-tokens/

    def get_queryset(self):
        return user_list()

    @extend_schema(request=UserAccessSerializer, responses={200: UserSerializer})
    def partial_update(self, request, pk=None):
        user = self.get_object()
        params = UserAccessSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.user_update_access(actor=request.user, user=user, **params.validated_data)
        return Response(UserSerializer(self.get_queryset().get(pk=user.pk)).data)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"], url_path="revoke-tokens")
    def revoke_tokens(self, request, pk=None):
        """Revoke every API token of the user (each revocation audited)."""
        user = self.get_object()
        services.user_tokens_revoke(actor=request.user, user=user)
        return Response(UserSerializer(self.get_queryset().get(pk=user.pk)).data)


class RoleViewSet(viewsets.ModelViewSet):
    """Roles: built-in ones are read-only; custom roles are composed of permission codes
    (`app_label.codename`, from `permission-choices/`). Nobody grants what they do not hold."""

    permission_classes = [GlobalPermission]
    required = {
        "*": "auth.view_group",
        "create": "auth.add_group",
        "update": "auth.change_group",
        "partial_update": "auth.change_group",
        "destroy": "auth.delete_group",
    }
    audit_model = Role
    serializer_class = RoleSerializer

    def get_queryset(self):
        return role_list()

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.role_create(
            actor=self.request.user,
            name=data["name"],
            description=data.get("description", ""),
            permissions=data["permissions"],
        )

    def perform_update(self, serializer):
        serializer.instance = services.role_update(
            actor=self.request.user, role=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.role_delete(actor=self.request.user, role=instance)

    @extend_schema(responses={200: PermissionChoiceSerializer(many=True)})
    @action(detail=False, methods=["get"], url_path="permission-choices", pagination_class=None)
    def permission_choices(self, request):
        """The permissions a custom role may hold, with translated labels."""
        return Response(
            [
                {
                    "code": permission_code(p),
                    "label": permission_label(p),
                    "app": p.content_type.app_label,
                }
                for p in role_permission_choices()
            ]
        )


class TeamViewSet(viewsets.ModelViewSet):
    """Teams. Everyone sees the teams they belong to (Admin and Auditor: all); writes need the
    group permissions (Admin). `members/` adds (POST `{"user": name}`) or removes (DELETE
    `?user=name`) one member; `members` in a PATCH replaces the whole list."""

    permission_classes = [GlobalPermission]
    required = {
        "*": None,
        "create": "auth.add_group",
        "update": "auth.change_group",
        "partial_update": "auth.change_group",
        "members": "auth.change_group",
        "destroy": "auth.delete_group",
    }
    audit_model = Team
    serializer_class = TeamSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Team.objects.none()
        return team_list(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.team_create(
            actor=self.request.user,
            name=data["name"],
            description=data.get("description", ""),
            members=data.get("members", []),
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        team, actor = serializer.instance, self.request.user
        members = data.pop("members", None)
        services.team_update(actor=actor, team=team, **data)
        if members is not None:
            current = set(team.members)
            for user in current - set(members):
                services.team_member_remove(actor=actor, team=team, user=user)
            for user in set(members) - current:
                services.team_member_add(actor=actor, team=team, user=user)

    def perform_destroy(self, instance):
        services.team_delete(actor=self.request.user, team=instance)

    @extend_schema(methods=["POST"], request=TeamMemberSerializer, responses={200: TeamSerializer})
    @extend_schema(
        methods=["DELETE"],
        request=None,
        parameters=[OpenApiParameter("user", str, required=True)],
        responses={200: TeamSerializer},
    )
    @action(detail=True, methods=["post", "delete"])
    def members(self, request, pk=None):
        team = self.get_object()
        source = request.data if request.method == "POST" else request.query_params
        params = TeamMemberSerializer(data={"user": source.get("user", "")})
        params.is_valid(raise_exception=True)
        change = (
            services.team_member_add if request.method == "POST" else services.team_member_remove
        )
        change(actor=request.user, team=team, user=params.validated_data["user"])
        return Response(TeamSerializer(team).data)
