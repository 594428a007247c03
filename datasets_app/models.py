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
