from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import base_model_list, worker_list


@login_required
def job_list(request):
    """Jobs: the queues and the workers that serve them (training jobs are listed here too
    once they exist)."""
    return render(request, "jobs/job_list.html", {"workers": worker_list(user=request.user)})


@login_required
def base_model_index(request):
    return render(
        request, "jobs/base_model_list.html", {"base_models": base_model_list(user=request.user)}
    )
