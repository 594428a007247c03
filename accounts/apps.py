from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from . import schema  # noqa: F401  (registers the OpenAPI token scheme)
        from .lockout import record_lockout
        from .roles import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="hearth.sync_roles")
        user_locked_out.connect(record_lockout, dispatch_uid="hearth.record_lockout")
