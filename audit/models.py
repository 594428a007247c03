from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    """Audit events are never changed or removed by application code."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit records cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit records cannot be deleted")


# Kept under its old name: other modules and tests import it.
AuditEventQuerySet = AppendOnlyQuerySet


class AppendOnlyModel(models.Model):
    """Refuses updates and deletes through the model API. Retention removes archived events
    through one deliberate raw-SQL path (audit.retention), nothing else does."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("audit records cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit records cannot be deleted")


class AuditEvent(AppendOnlyModel):
    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("allowed")
        DENIED = "denied", _("denied")
        ERROR = "error", _("error")

    # Set in Python before hashing (audit.chain): auto_now_add would stamp a different value
    # than the one the link covers.
    created_at = models.DateTimeField(_("time"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Copied so that the record still names the person after the user row is deleted.
    actor_username = models.CharField(_("user name"), max_length=150, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True, db_index=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.ALLOWED
    )
    details = models.JSONField(_("details"), default=dict, blank=True)
    # The hash chain (audit.chain): 1, 2, 3, … without gaps; `hash` = HMAC-SHA256(audit key,
    # canonical fields + `prev_hash`), `prev_hash` = the previous event's `hash`.
    position = models.PositiveBigIntegerField(_("chain position"), unique=True)
    prev_hash = models.CharField(_("previous link"), max_length=64)
    hash = models.CharField(_("link"), max_length=64)

    # The base manager stays plain on purpose: deleting a user sets `actor` to NULL through it
    # (the copied `actor_username` keeps the record readable, and the chain does not cover the
    # foreign key for that reason).
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        default_permissions = ("view",)
        permissions = [("export_auditevent", _("Can export audit events"))]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action}"


class AuditChainHead(models.Model):
    """One row: the last position and link of the chain. Appenders lock it (SELECT … FOR
    UPDATE) inside their transaction, so two writers never take the same position, and a
    rolled-back append rolls the head back with it."""

    position = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"audit chain head {self.position}"


class AuditCheckpoint(AppendOnlyModel):
    """Where retention cut the chain: events first_position..last_position went to an encrypted
    archive file and were deleted; verification of what remains starts after last_hash. `mac`
    (keyed like the links) stops someone with database access from forging a checkpoint to
    hide deleted events."""

    created_at = models.DateTimeField(_("time"))
    archive_name = models.CharField(_("archive file"), max_length=200, unique=True)
    first_position = models.PositiveBigIntegerField(_("first position"), unique=True)
    last_position = models.PositiveBigIntegerField(_("last position"), unique=True)
    first_prev_hash = models.CharField(_("link before the first event"), max_length=64)
    last_hash = models.CharField(_("last link"), max_length=64)
    plaintext_sha256 = models.CharField(_("archive SHA-256"), max_length=64)
    count = models.PositiveBigIntegerField(_("events"))
    mac = models.CharField(_("checkpoint MAC"), max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["first_position"]
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.archive_name} ({self.first_position}–{self.last_position})"
