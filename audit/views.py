from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .forms import AuditFilterForm
from .models import AuditEvent
from .selectors import audit_event_list


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def audit_list(request):
    form = AuditFilterForm(request.GET)
    # A bad filter shows its error and no rows, never the unfiltered trail.
    events = (
        audit_event_list(user=request.user, filters=form.cleaned_data)
        if form.is_valid()
        else AuditEvent.objects.none()
    )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    return render(request, "audit/audit_list.html", {"form": form, "page": page})
