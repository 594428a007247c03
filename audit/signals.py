"""Authentication events: logins, logouts and failed logins."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent
from .services import record


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    record(action="auth.login", actor=user, obj=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(action="auth.logout", actor=user, obj=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the attempted user name: Django already scrubs the password from `credentials`.
    username = str(credentials.get("username", ""))[:150]
    record(
        action="auth.login_failed",
        actor_username=username,
        outcome=AuditEvent.Outcome.DENIED,
        details={"username": username},
    )
