from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.restrict import RestrictedQuerySet


class DatasetQuerySet(RestrictedQuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)


class Dataset(models.Model):
    """A named collection of immutable versions (the versions arrive with uploads)."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="datasets",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Soft delete: restorable by an admin until a retention purge.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Retention purge: the encrypted files are gone; rows stay for lineage and the audit trail.
    purged_at = models.DateTimeField(_("purged"), null=True, blank=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        permissions = [
            ("view_raw_dataset", _("Can see raw values of sensitive columns")),
            ("use_dataset", _("Can train on the dataset")),
            ("manage_dataset", _("Can share the dataset")),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetVersionQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view"):
        """Versions inherit their dataset's permissions (and its soft deletion)."""
        return self.filter(dataset__in=Dataset.objects.restrict(user, action).alive())


class ImmutableVersionError(Exception):
    """A version's content and lineage never change; only its metadata marks may."""


class DatasetVersion(models.Model):
    """One immutable state of a dataset: an encrypted JSON Lines file plus what was detected."""

    class Operation(models.TextChoices):
        UPLOAD = "upload", _("upload")
        DESENSITIZE = "desensitize", _("desensitization")
        AUGMENT = "augment", _("augmentation")

    # Fields that may change after creation: marks, not content.
    MUTABLE_FIELDS = frozenset({"sensitive_columns"})

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    parent = models.ForeignKey(
        "self",
        verbose_name=_("derived from"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    operation = models.CharField(_("operation"), max_length=20, choices=Operation.choices)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_username = models.CharField(max_length=150)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    original_filename = models.CharField(_("file name"), max_length=255, blank=True)
    source_format = models.CharField(_("format"), max_length=20, blank=True)
    source_encoding = models.CharField(_("encoding"), max_length=30, blank=True)
    source_sha256 = models.CharField(_("SHA-256 of the uploaded file"), max_length=64, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    size_bytes = models.BigIntegerField(_("size"))
    stored_bytes = models.BigIntegerField(_("size on disk (encrypted)"))
    storage_key = models.CharField(max_length=300, unique=True)
    row_count = models.PositiveBigIntegerField(_("rows"))
    schema = models.JSONField(_("schema"), default=dict)
    validation = models.JSONField(_("validation"), default=dict, blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    # Before/after pairs hold raw values: shown only to users with view_raw on the dataset.
    report_samples = models.JSONField(default=list, blank=True)
    sensitive_columns = models.JSONField(_("sensitive columns"), default=list, blank=True)

    objects = DatasetVersionQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="unique_version_number")
        ]
        verbose_name = _("dataset version")
        verbose_name_plural = _("dataset versions")
        default_permissions = ()  # governed by the dataset's permissions

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self.MUTABLE_FIELDS:
                raise ImmutableVersionError("dataset versions are immutable")
        super().save(*args, **kwargs)

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema.get("columns", [])]
