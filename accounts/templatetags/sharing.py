"""`{% share_dialog object %}`: the share dialog, rendered only for users who may share."""

from django import template

from .. import sharing
from ..selectors import team_list

register = template.Library()

KINDS = {"datasets_app.dataset": "dataset", "jobs.job": "job", "jobs.modelversion": "model-version"}


@register.inclusion_tag("accounts/_share_dialog.html", takes_context=True)
def share_dialog(context, obj) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or not sharing.can_share(user, obj):
        return {"show": False}
    policy = sharing.policy_for(obj)
    return {
        "show": True,
        "obj": obj,
        "kind": KINDS[obj._meta.label_lower],
        # The owner's access and your own are not changed from here.
        "shares": [
            (share, not share.owner and not (share.kind == "user" and share.id == user.pk))
            for share in sharing.shares_of(obj=obj)
        ],
        "levels": sharing.levels_for(obj),
        "level_labels": sharing.LEVEL_LABELS,
        "has_view_raw": policy.view_raw,
        "teams": team_list(user=user),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }
