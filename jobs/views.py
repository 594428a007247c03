from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.generic import DetailView

from accounts.mixins import RestrictedViewMixin
from accounts.restrict import user_can

from .models import Job
from .selectors import base_model_list, worker_list
from .selectors import job_list as jobs_for


@login_required
def job_list(request):
    """Jobs the user may see, and the queues and workers that serve them."""
    jobs = jobs_for(user=request.user)
    if request.GET.get("kind"):
        jobs = jobs.filter(kind=request.GET["kind"])
    context = {
        "jobs": jobs[:100],
        "workers": worker_list(user=request.user),
        "kinds": Job.Kind.choices,
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
            **kwargs,
        )


@login_required
def base_model_index(request):
    return render(
        request, "jobs/base_model_list.html", {"base_models": base_model_list(user=request.user)}
    )
