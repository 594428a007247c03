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
