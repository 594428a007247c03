from django.contrib.auth import views as auth_views
from django.urls import path

from . import access_views, views

app_name = "accounts"

urlpatterns = [
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html", success_url="/"
        ),
        name="password_change",
    ),
    # Access control (Admin; Auditor read-only)
    path("users/", access_views.users, name="users"),
    path("users/<int:pk>/", access_views.user_detail, name="user"),
    path("users/<int:pk>/active/", access_views.user_toggle_active, name="user_toggle_active"),
    path(
        "users/<int:pk>/revoke-tokens/",
        access_views.user_revoke_tokens,
        name="user_revoke_tokens",
    ),
    path("roles/", access_views.roles, name="roles"),
    path("roles/new/", access_views.role_new, name="role_new"),
    path("roles/<int:pk>/", access_views.role_detail, name="role"),
    path("roles/<int:pk>/delete/", access_views.role_delete, name="role_delete"),
    path("teams/", access_views.teams, name="teams"),
    path("teams/<int:pk>/", access_views.team_detail, name="team"),
    path("teams/<int:pk>/members/", access_views.team_member_add, name="team_member_add"),
    path(
        "teams/<int:pk>/members/<int:user_pk>/remove/",
        access_views.team_member_remove,
        name="team_member_remove",
    ),
    path("teams/<int:pk>/delete/", access_views.team_delete, name="team_delete"),
    # The share dialog on dataset, job and model version pages
    path("share/<slug:kind>/<int:pk>/", access_views.share_grant, name="share"),
    path("share/<slug:kind>/<int:pk>/revoke/", access_views.share_revoke, name="share_revoke"),
]
