from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    expires_in_days = forms.IntegerField(
        label=_("Expires in (days)"),
        min_value=1,
        max_value=settings.HEARTH_TOKEN_MAX_DAYS,
        initial=settings.HEARTH_TOKEN_DEFAULT_DAYS,
    )


class UserAccessForm(forms.Form):
    is_active = forms.BooleanField(label=_("Active"), required=False)
    roles = forms.MultipleChoiceField(
        label=_("Roles"), required=False, widget=forms.CheckboxSelectMultiple
    )
    teams = forms.MultipleChoiceField(
        label=_("Teams"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, roles, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = [(str(r.pk), r.name) for r in roles]
        self.fields["teams"].choices = [(str(t.pk), t.name) for t in teams]


class RoleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    permissions = forms.MultipleChoiceField(
        label=_("Permissions"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["permissions"].choices = choices


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    description = forms.CharField(label=_("Description"), required=False)


class MemberForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150)


class ShareForm(forms.Form):
    target = forms.ChoiceField(
        label=_("Share with"),
        choices=[("user", _("a user")), ("team", _("a team"))],
        initial="user",
    )
    name = forms.CharField(label=_("User or team name"), max_length=150)
    level = forms.ChoiceField(label=_("Level"))
    view_raw = forms.BooleanField(label=_("Raw sensitive values"), required=False)

    def __init__(self, *args, levels, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["level"].choices = levels
