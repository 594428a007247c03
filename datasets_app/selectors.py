from .models import Dataset


def dataset_list(*, user, action: str = "view"):
    """Datasets the user may act on, deleted ones excluded."""
    return Dataset.objects.restrict(user, action).alive().select_related("owner")
