from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from audit.selectors import recent_activity
from config.api.errors import json_error
from jobs.selectors import worker_list


@login_required
def dashboard(request):
    return render(
        request,
        "dashboard.html",
        {
            "workers": worker_list(user=request.user),
            "activity": recent_activity(user=request.user),
        },
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def error_404(request, exception=None):
    if _is_api(request):
        return json_error(404, "Not found.", "not_found")
    return render(request, "404.html", status=404)


def error_403(request, exception=None):
    if _is_api(request):
        return json_error(
            403, "You do not have permission to perform this action.", "permission_denied"
        )
    return render(request, "403.html", status=403)


def error_500(request):
    if _is_api(request):
        return json_error(
            500, "Server error. The request id identifies it in the logs.", "server_error"
        )
    return render(request, "500.html", status=500)
