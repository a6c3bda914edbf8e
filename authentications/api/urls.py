"""The API's URLs, under /api/: v1 for the calls, the schema and its offline docs beside."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from authentications.api import views

app_name = "api"

urlpatterns = [
    path("v1/authentications/", views.AuthenticationList.as_view(), name="authentications"),
    path(
        "v1/authentications/<int:pk>/",
        views.AuthenticationDetail.as_view(),
        name="authentication",
    ),
    path("v1/authentications/<int:pk>/token/", views.TokenView.as_view(), name="token"),
    re_path(
        r"^v1/authentications/(?P<pk>[0-9]+)/bc/(?P<path>.*)$",
        views.BcProxy.as_view(),
        name="bc",
    ),
    path("v1/endpoints/", views.EndpointList.as_view(), name="endpoints"),
    path("v1/endpoints/<int:pk>/run/", views.EndpointRun.as_view(), name="endpoint_run"),
    path("v1/endpoints/<int:pk>/export/", views.EndpointExport.as_view(), name="endpoint_export"),
    re_path(r"^v1/", views.Unknown.as_view(), name="unknown"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
