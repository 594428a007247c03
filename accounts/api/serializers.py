from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..models import ApiToken, Role, Team
from ..selectors import permission_code, role_description


class ApiTokenSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    # Bounds are checked by the service, which reads the settings at call time.
    expires_in_days = serializers.IntegerField(required=False)


class IssuedApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


# -- admin: users, roles, teams ----------------------------------------------------------------
class UserSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()
    active_tokens = serializers.IntegerField(source="token_count", read_only=True)

    class Meta:
        model = get_user_model()
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_superuser",
            "last_login",
            "date_joined",
            "roles",
            "teams",
            "active_tokens",
        ]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return sorted(g.name for g in user.groups.all() if hasattr(g, "role"))

    def get_teams(self, user) -> list[str]:
        return sorted(g.name for g in user.groups.all() if hasattr(g, "team"))


class UserAccessSerializer(serializers.Serializer):
    """PATCH: any of these; roles and teams are full lists of names (replacing the current)."""

    is_active = serializers.BooleanField(required=False)
    roles = serializers.ListField(child=serializers.CharField(), required=False)
    teams = serializers.ListField(child=serializers.CharField(), required=False)

    def _resolve(self, model, names: list[str]) -> list:
        found = {
            o.group.name: o
            for o in model.objects.select_related("group").filter(group__name__in=names)
        }
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise serializers.ValidationError(
                _("Unknown: %(names)s") % {"names": ", ".join(unknown)}
            )
        return [found[n] for n in dict.fromkeys(names)]

    def validate_roles(self, names: list[str]) -> list[Role]:
        return self._resolve(Role, names)

    def validate_teams(self, names: list[str]) -> list[Team]:
        return self._resolve(Team, names)


class RoleSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    permissions = serializers.ListField(
        child=serializers.CharField(),
        help_text="Permission codes, `app_label.codename` (see roles/permission-choices/).",
    )
    member_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Role
        fields = ["id", "name", "description", "builtin", "permissions", "member_count"]
        read_only_fields = ["id", "builtin", "member_count"]

    def to_representation(self, role):
        return {
            "id": role.pk,
            "name": role.name,
            "description": role_description(role),
            "builtin": role.builtin,
            "permissions": sorted(
                permission_code(p) for p in role.group.permissions.select_related("content_type")
            ),
            "member_count": getattr(role, "member_count", None),
        }


class PermissionChoiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    app = serializers.CharField()


class TeamSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    members = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="User names."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "description", "members", "created_at"]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, team):
        return {
            "id": team.pk,
            "name": team.name,
            "description": team.description,
            "members": sorted(team.members.values_list("username", flat=True)),
            "created_at": serializers.DateTimeField().to_representation(team.created_at),
        }

    def validate_members(self, names: list[str]) -> list:
        users = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
        unknown = sorted(set(names) - set(users))
        if unknown:
            raise serializers.ValidationError(
                _("Unknown users: %(names)s") % {"names": ", ".join(unknown)}
            )
        return [users[n] for n in dict.fromkeys(names)]


class TeamMemberSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="A user name.")

    def validate_user(self, name: str):
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise serializers.ValidationError(_("No such user."))
        return user
