"""`{resource}/{id}/permissions/`: who an object is shared with, and sharing it.

Add `SharingMixin` first in the bases of a funnel viewset (`RestrictedQueryMixin`). The object is
loaded through the funnel (invisible → 404, recorded); the endpoint then needs the right to
share (owner, `manage` on the object, Admin), else 403 (recorded).

- GET: the current shares.
- POST `{"user": "<username>" | "team": "<team name>", "level": "view|use|change|manage",
  "view_raw": false}`: set that user's or team's access to exactly this level (200, the share).
- DELETE `?user=<username>` or `?team=<team name>` (or the same in a JSON body): remove it (204).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import sharing
from ..models import Team


class ShareSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user", "team"])
    id = serializers.IntegerField()
    name = serializers.CharField()
    level = serializers.ChoiceField(choices=sharing.LEVELS, allow_null=True)
    view_raw = serializers.BooleanField()
    owner = serializers.BooleanField()
    permissions = serializers.ListField(child=serializers.CharField())


class ShareTargetSerializer(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="A user name.")
    team = serializers.CharField(required=False, help_text="A team name.")

    def validate(self, attrs):
        if ("user" in attrs) == ("team" in attrs):
            raise serializers.ValidationError(_("Give either `user` or `team`."))
        if "user" in attrs:
            user = get_user_model().objects.filter(username=attrs["user"]).first()
            if user is None:
                raise serializers.ValidationError({"user": _("No such user.")})
            return {"user": user}
        team = Team.objects.select_related("group").filter(group__name=attrs["team"]).first()
        if team is None:
            raise serializers.ValidationError({"team": _("No such team.")})
        return {"team": team}


class ShareGrantSerializer(ShareTargetSerializer):
    level = serializers.ChoiceField(choices=sharing.LEVELS)
    view_raw = serializers.BooleanField(default=False)

    def validate(self, attrs):
        target = super().validate(attrs)
        return {**target, "level": attrs["level"], "view_raw": attrs["view_raw"]}


def _data(share: sharing.Share) -> dict:
    return ShareSerializer(
        {
            "kind": share.kind,
            "id": share.id,
            "name": share.name,
            "level": share.level,
            "view_raw": share.view_raw,
            "owner": share.owner,
            "permissions": list(share.permissions),
        }
    ).data


class SharingMixin:
    """GET/POST/DELETE `{id}/permissions/` on a funnel viewset (URL `<basename>-permissions`)."""

    def object_action(self, request) -> str:
        # Loading the object needs only visibility; the right to share is checked below, so a
        # visible object answers 403 (not a DELETE-means-delete check by the base viewset).
        if self.action == "share_permissions":
            return "view"
        return super().object_action(request)

    @extend_schema(methods=["GET"], request=None, responses={200: ShareSerializer(many=True)})
    @extend_schema(methods=["POST"], request=ShareGrantSerializer, responses={200: ShareSerializer})
    @extend_schema(
        methods=["DELETE"],
        request=None,
        parameters=[OpenApiParameter("user", str), OpenApiParameter("team", str)],
        responses={204: None},
    )
    @action(
        detail=True,
        methods=["get", "post", "delete"],
        url_path="permissions",
        url_name="permissions",
    )
    def share_permissions(self, request, pk=None):
        obj = self.get_object()
        actor = request.user
        if request.method == "GET":
            sharing.require_can_share(actor=actor, obj=obj)
            return Response([_data(s) for s in sharing.shares_of(obj=obj)])
        if request.method == "POST":
            # The right to share comes before input validation: no probing of names by others.
            sharing.require_can_share(actor=actor, obj=obj, action="permission.grant")
            params = ShareGrantSerializer(data=request.data)
            params.is_valid(raise_exception=True)
            share = sharing.share_grant(actor=actor, obj=obj, **params.validated_data)
            return Response(_data(share), status=status.HTTP_200_OK)
        sharing.require_can_share(actor=actor, obj=obj, action="permission.revoke")
        given = {k: v for k, v in request.query_params.items() if k in ("user", "team")}
        if not given and isinstance(request.data, dict):
            given = {k: v for k, v in request.data.items() if k in ("user", "team")}
        params = ShareTargetSerializer(data=given)
        if not params.is_valid():
            raise exceptions.ValidationError(params.errors)
        sharing.share_revoke(actor=actor, obj=obj, **params.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
