from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import DetailView, FormView, ListView
from django.views.generic.edit import DeleteView

from accounts.mixins import RestrictedViewMixin

from .forms import DatasetForm
from .models import Dataset
from .services import dataset_create, dataset_soft_delete


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
