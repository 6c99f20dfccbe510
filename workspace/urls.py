from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("casenotes.urls")),
    path("teams/", include("teams.urls")),
    path("", include("discussions.urls")),
    path("ig/", include("audit.urls")),
    path("accounts/", include("workspace.auth_urls")),
]
