from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.generic import DetailView

from accounts.mixins import RestrictedViewMixin
from accounts.restrict import user_can
from audit.selectors import object_history
from audit.services import record_denied
from datasets_app.models import Dataset, DatasetVersion

from .forms import TrainingForm
from .models import BaseModel, Job, ModelVersion
from .selectors import base_model_list, worker_list
from .selectors import job_list as jobs_for
from .training import PRESETS, training_submit


@login_required
def job_list(request):
    """Jobs the user may see (filters: kind, status, owner, base model, dataset), and the
    queues and workers that serve them."""
    jobs = jobs_for(user=request.user).select_related("base_model")
    filters = {
        "kind": "kind",
        "status": "status",
        "owner": "owner__username",
        "base_model": "base_model_id",
        "dataset": "dataset_version__dataset_id",
    }
    for param, lookup in filters.items():
        if request.GET.get(param):
            jobs = jobs.filter(**{lookup: request.GET[param]})
    queued = list(
        Job.objects.filter(status=Job.Status.QUEUED)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    jobs = list(jobs[:200])
    for job in jobs:
        job.queue_position = queued.index(job.pk) + 1 if job.pk in queued else None
    context = {
        "jobs": jobs,
        "workers": worker_list(user=request.user),
        "kinds": Job.Kind.choices,
        "statuses": Job.Status.choices,
        "selected": request.GET,
    }
    return render(request, "jobs/job_list.html", context)


class JobDetailView(RestrictedViewMixin, DetailView):
    model = Job
    template_name = "jobs/job_detail.html"

    def get_base_queryset(self):
        return Job.objects.select_related(
            "owner", "dataset_version__dataset", "result_dataset_version"
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            can_cancel=user_can(self.request.user, "cancel", self.object)
            and not self.object.is_final,
            can_retry=self.object.kind == Job.Kind.TRAINING
            and user_can(self.request.user, "change", self.object),
            history=object_history(user=self.request.user, obj=self.object),
            **kwargs,
        )


@login_required
def base_model_index(request):
    versions = ModelVersion.objects.restrict(request.user, "view").select_related("base_model")
    context = {"base_models": base_model_list(user=request.user), "model_versions": versions}
    return render(request, "jobs/base_model_list.html", context)


@login_required
@permission_required("jobs.add_job", raise_exception=True)
def training_new(request):
    """Submit a training job: presets fill the form; the server validates everything."""
    user = request.user
    usable = Dataset.objects.restrict(user, "use").alive()
    versions = DatasetVersion.objects.filter(dataset__in=usable).select_related("dataset")
    models = BaseModel.objects.restrict(user, "view")
    form = TrainingForm(
        request.POST or None,
        base_models=models,
        dataset_versions=versions,
        initial={"dataset_version": request.GET.get("dataset_version")},
    )
    if request.method == "POST" and form.is_valid():
        try:
            job = training_submit(
                owner=user,
                base_model=models.get(pk=form.cleaned_data["base_model"]),
                dataset_version=versions.get(pk=form.cleaned_data["dataset_version"]),
                params=form.params(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Training job #%(id)s queued.") % {"id": job.pk})
            return redirect("jobs:detail", pk=job.pk)
    presets = {k: {f: v for f, v in p.items() if f != "title"} for k, p in PRESETS.items()}
    return render(request, "jobs/training_new.html", {"form": form, "presets": presets})


@login_required
def job_compare(request):
    try:
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.strip()][:5]
    except ValueError:
        raise Http404 from None
    jobs = {j.pk: j for j in Job.objects.restrict(request.user, "view").filter(pk__in=ids)}
    if len(jobs) != len(set(ids)):
        record_denied(
            actor=request.user,
            model=Job,
            action="view",
            object_id=",".join(map(str, ids)),
            reason="not visible",
        )
        raise Http404
    return render(
        request, "jobs/job_compare.html", {"job_ids": ids, "jobs": [jobs[i] for i in ids]}
    )


class ModelVersionDetailView(RestrictedViewMixin, DetailView):
    model = ModelVersion
    template_name = "jobs/model_version_detail.html"

    def get_base_queryset(self):
        return ModelVersion.objects.select_related(
            "base_model", "job", "dataset_version__dataset", "parent"
        )

    def get_context_data(self, **kwargs):
        from .engine.compress import TITLES
        from .engine.model_specs import COMPRESSION_METHODS, SCORERS
        from .model_tasks import compression_support, gpu_workers

        user, version = self.request.user, self.object
        # Downloading, generating and starting jobs from the weights need `use`.
        can_use = user_can(user, "use", version)
        lineage = version.lineage()
        workers = gpu_workers()  # once: each method's reason comes from the same workers
        methods = [(m, TITLES[m], compression_support(m, workers)) for m in COMPRESSION_METHODS]
        runtime = (version.card or {}).get("train_runtime")
        world = (version.card or {}).get("world_size") or 1
        return super().get_context_data(
            can_download=can_use,
            can_use=can_use,
            can_submit=can_use and user.has_perm("jobs.add_job"),
            can_promote=user_can(user, "change", version),
            can_override=user.has_perm("jobs.override_gate_modelversion"),
            lineage=lineage,
            root_job=lineage[0].job,
            derived=version.derived.restrict(user, "view"),
            evaluations=version.evaluations.select_related("gate", "job")[:10],
            compression=(version.card or {}).get("compression"),
            gpu_hours=runtime * world / 3600 if runtime and version.origin == "training" else None,
            methods=methods,
            any_method=any(reason is None for _m, _t, reason in methods),
            scorers=SCORERS,
            stages=ModelVersion.Stage.choices,
            dataset_versions=DatasetVersion.objects.restrict(user, "view")
            .select_related("dataset")
            .order_by("-created_at")[:50],
            history=object_history(user=user, obj=version),
            **kwargs,
        )
