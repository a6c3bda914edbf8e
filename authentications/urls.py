from django.urls import path

from authentications import notification_views, views

app_name = "authentications"

urlpatterns = [
    path("callback/", views.callback, name="callback"),
    path("granted/", views.granted, name="granted"),
    path("granted/consent/", views.consent_granted, name="consent_granted"),
    path("authorize/<str:token>/", views.authorize, name="authorize"),
    path("notifications/", notification_views.notifications, name="notifications"),
]
