from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from .forms import AuditFilterForm
from .models import AuditEvent
from .selectors import audit_event_list
from .services import audit_verify_recorded, record_denied
from .verification import REASON_LABELS


def _auditors_only(view):
    """`audit.view_auditevent` or 403, the refusal recorded like every other denial."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm("audit.view_auditevent"):
            record_denied(actor=request.user, model=AuditEvent, action="view")
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@_auditors_only
def audit_list(request):
    form = AuditFilterForm(request.GET)
    # A bad filter shows its error and no rows, never the unfiltered trail.
    events = (
        audit_event_list(user=request.user, filters=form.cleaned_data)
        if form.is_valid()
        else AuditEvent.objects.none()
    )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "can_export": request.user.has_perm("audit.export_auditevent"),
    }
    return render(request, "audit/audit_list.html", context)


@login_required
@_auditors_only
@require_http_methods(["GET", "POST"])
def audit_verify_page(request):
    """GET: the button; POST: verify the chain (and the archives if asked) and show the result."""
    result = None
    if request.method == "POST":
        archives = bool(request.POST.get("archives"))
        result = audit_verify_recorded(actor=request.user, archives=archives)
    reason = REASON_LABELS.get(result.broken.reason) if result and result.broken else None
    return render(request, "audit/audit_verify.html", {"result": result, "reason": reason})
