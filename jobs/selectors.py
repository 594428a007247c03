from .models import BaseModel, Worker


def worker_list(*, user):
    return Worker.objects.restrict(user, "view").filter(stopped_at__isnull=True)


def live_worker_count() -> int:
    """For /readyz: not per-user, only a number."""
    return Worker.objects.live().count()


def base_model_list(*, user):
    return BaseModel.objects.restrict(user, "view")


def job_list(*, user):
    from .models import Job

    return Job.objects.restrict(user, "view").select_related("owner", "dataset_version__dataset")
