from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent

# The browser's date-time picker; its value (no zone) is read in the user's time zone.
_WHEN = {"type": "datetime-local", "step": "1"}


class AuditFilterForm(forms.Form):
    user = forms.CharField(label=_("User"), required=False)
    action = forms.CharField(label=_("Action starts with"), required=False)
    object_type = forms.CharField(label=_("Object type"), required=False)
    object_id = forms.CharField(label=_("Object id"), required=False)
    outcome = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", "—"), *AuditEvent.Outcome.choices]
    )
    since = forms.DateTimeField(
        label=_("From"),
        required=False,
        widget=forms.DateTimeInput(attrs=_WHEN, format="%Y-%m-%dT%H:%M:%S"),
    )
    until = forms.DateTimeField(
        label=_("Until"),
        required=False,
        widget=forms.DateTimeInput(attrs=_WHEN, format="%Y-%m-%dT%H:%M:%S"),
    )
