"""System checks: the audit trail cannot append without its key."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def audit_key_configured(app_configs, **kwargs) -> list[Error]:
    from .chain import audit_key

    try:
        audit_key()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See .env.example: HEARTH_AUDIT_KEY.", id="audit.E001")]
    return []
