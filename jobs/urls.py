from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list, name="list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="detail"),
    path("models/", views.base_model_index, name="base_models"),
]
