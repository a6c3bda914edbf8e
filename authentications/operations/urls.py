"""`/health/live`, `/health/ready` (and `/metrics`), at the site's root where probes look."""

from django.urls import path

from authentications.operations import views

urlpatterns = [
    path("health/live", views.live, name="health_live"),
    path("health/ready", views.ready, name="health_ready"),
    path("metrics", views.metrics_view, name="metrics"),
]
