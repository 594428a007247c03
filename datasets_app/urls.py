from django.urls import path

from . import views

app_name = "datasets_app"

urlpatterns = [
    path("", views.DatasetListView.as_view(), name="list"),
    path("new/", views.DatasetCreateView.as_view(), name="create"),
    path("<int:pk>/", views.DatasetDetailView.as_view(), name="detail"),
    path("<int:pk>/delete/", views.DatasetDeleteView.as_view(), name="delete"),
    path("versions/<int:pk>/", views.VersionDetailView.as_view(), name="version"),
]
