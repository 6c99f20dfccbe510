from django.contrib import admin
from django.urls import include, path

from workspace.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("casenotes.urls")),
    path("teams/", include("teams.urls")),
    path("", include("discussions.urls")),
    path("ig/", include("audit.urls")),
    path("accounts/", include("workspace.auth_urls")),
]
