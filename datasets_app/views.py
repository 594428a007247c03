import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import DetailView, FormView, ListView
from django.views.generic.edit import DeleteView

from accounts.mixins import RestrictedViewMixin
from accounts.restrict import user_can
from audit.selectors import object_history
from audit.services import record, record_denied
from jobs.selectors import base_model_list

from . import processing, selectors
from .desensitize import PRESETS
from .forms import DatasetForm
from .models import Dataset, DatasetVersion
from .services import dataset_create, dataset_soft_delete, dataset_version_mark_sensitive


class DatasetListView(RestrictedViewMixin, ListView):
    model = Dataset
    paginate_by = 50
    template_name = "datasets_app/dataset_list.html"

    def get_base_queryset(self):
        return Dataset.objects.alive().select_related("owner")


class DatasetDetailView(RestrictedViewMixin, DetailView):
    model = Dataset
    template_name = "datasets_app/dataset_detail.html"

    def get_base_queryset(self):
        return Dataset.objects.alive().select_related("owner")

    def get_context_data(self, **kwargs):
        user = self.request.user
        return super().get_context_data(
            versions=selectors.version_list(user=user, dataset=self.object),
            can_change=user_can(user, "change", self.object),
            can_delete=user_can(user, "delete", self.object),
            max_upload_bytes=settings.HEARTH_MAX_UPLOAD_BYTES,
            history=object_history(user=user, obj=self.object),
            **kwargs,
        )


class DatasetCreateView(LoginRequiredMixin, PermissionRequiredMixin, FormView):
    permission_required = "datasets_app.add_dataset"
    form_class = DatasetForm
    template_name = "datasets_app/dataset_form.html"

    def form_valid(self, form):
        dataset = dataset_create(owner=self.request.user, **form.cleaned_data)
        messages.success(self.request, _("Dataset “%(name)s” created.") % {"name": dataset.name})
        return redirect("datasets_app:detail", pk=dataset.pk)


class DatasetDeleteView(RestrictedViewMixin, DeleteView):
    model = Dataset
    action = "delete"
    template_name = "datasets_app/dataset_confirm_delete.html"

    def get_base_queryset(self):
        return Dataset.objects.alive()

    def form_valid(self, form):
        dataset_soft_delete(dataset=self.object, actor=self.request.user)
        messages.success(
            self.request, _("Dataset “%(name)s” deleted.") % {"name": self.object.name}
        )
        return redirect("datasets_app:list")


class VersionDetailView(RestrictedViewMixin, DetailView):
    """A version: schema, validation report, masked preview, lineage and processing."""

    model = DatasetVersion
    template_name = "datasets_app/version_detail.html"

    def get_base_queryset(self):
        return DatasetVersion.objects.select_related("dataset", "parent")

    def get_context_data(self, **kwargs):
        user, version = self.request.user, self.object
        preview = selectors.version_preview(user=user, version=version, limit=20)
        record(
            action="datasets_app.version.preview",
            actor=user,
            obj=version,
            details={"rows": len(preview["rows"]), "raw": preview["raw"]},
        )
        return super().get_context_data(
            preview=preview,
            can_view_raw=preview["raw"],
            can_change=user_can(user, "change", version.dataset),
            presets=[(key, p.title, p.description) for key, p in PRESETS.items()],
            jobs=version.jobs.order_by("-created_at")[:10],
            lineage=_lineage(version),
            base_models=base_model_list(user=user),
            report_json=json.dumps(version.report, ensure_ascii=False, indent=2),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        """Forms on the page: mark sensitive columns, start desensitization or augmentation."""
        version = self.get_object()
        if not user_can(request.user, "change", version.dataset):
            record_denied(actor=request.user, model=Dataset, action="change", obj=version.dataset)
            raise PermissionDenied
        form = request.POST.get("form")
        try:
            if form == "sensitive":
                dataset_version_mark_sensitive(
                    version=version, actor=request.user, columns=request.POST.getlist("columns")
                )
                messages.success(request, _("Sensitive columns saved."))
                return redirect("datasets_app:version", pk=version.pk)
            if form == "desensitize":
                job = processing.desensitize_submit(
                    version=version,
                    actor=request.user,
                    preset=request.POST.get("preset", ""),
                    policy=_json_field(request.POST.get("policy", "")),
                )
            elif form == "augment":
                job = processing.augment_submit(
                    version=version,
                    actor=request.user,
                    config=_json_field(request.POST.get("config", "")) or {},
                    generator_model=int(request.POST["generator_model"])
                    if request.POST.get("generator_model")
                    else None,
                )
            else:
                raise ValidationError(_("Unknown form."))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("datasets_app:version", pk=version.pk)
        messages.success(request, _("Job #%(id)s queued.") % {"id": job.pk})
        return redirect("jobs:detail", pk=job.pk)


def _json_field(text: str):
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from exc


def _lineage(version: DatasetVersion) -> list[DatasetVersion]:
    chain, current = [], version
    while current is not None:
        chain.append(current)
        current = current.parent
    return list(reversed(chain))
