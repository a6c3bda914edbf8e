from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("authentications/", include("authentications.urls")),
    path("", include("authentications.operations.urls")),
    path("api/", include("authentications.api.urls")),
]
