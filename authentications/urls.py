"""The public pages: Microsoft's callback, the link landing page, BC's notifications."""

from django.urls import path

from authentications.links import views as links_views
from authentications.signin import views as signin_views
from authentications.webhooks import views as webhooks_views

app_name = "authentications"

urlpatterns = [
    path("callback/", signin_views.callback, name="callback"),
    path("granted/", signin_views.granted, name="granted"),
    path("granted/consent/", signin_views.consent_granted, name="consent_granted"),
    path("authorize/<str:token>/", links_views.authorize, name="authorize"),
    path("notifications/", webhooks_views.notifications, name="notifications"),
]
