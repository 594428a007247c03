import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness: a fast hash is enough (no password stretching needed)
    # and lets authentication look the token up by an indexed column.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now, user__is_active=True)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once at creation."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now() and self.user.is_active


class Role(models.Model):
    """A global role: a Django group whose model permissions apply to every object of a type.

    Built-in roles (Admin, Data Scientist, Auditor, Viewer) are created by migrations and cannot
    be edited or deleted; admins compose custom roles from permissions. The name lives on the
    group (one source of truth, unique across roles and teams).
    """

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="role", verbose_name=_("group")
    )
    description = models.TextField(_("description"), blank=True)
    builtin = models.BooleanField(_("built-in"), default=False, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-builtin", "group__name"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        default_permissions = ()  # administered through auth.*_group (Admin)

    def __str__(self) -> str:
        return self.group.name

    @property
    def name(self) -> str:
        return self.group.name


class Team(models.Model):
    """A team of users. Its group never holds global permissions: objects are shared with it
    per object (guardian group grants), so members see what the team was given, nothing more."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="team", verbose_name=_("group")
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["group__name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        default_permissions = ()  # administered through auth.*_group (Admin)

    def __str__(self) -> str:
        return self.group.name

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def members(self):
        return self.group.user_set.all()
