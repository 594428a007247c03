from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list, name="list"),
    path("jobs/new/", views.training_new, name="new"),
    path("jobs/compare/", views.job_compare, name="compare"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="detail"),
    path("models/versions/<int:pk>/", views.ModelVersionDetailView.as_view(), name="model_version"),
    path("models/", views.base_model_index, name="base_models"),
]
