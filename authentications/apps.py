from django.apps import AppConfig


class AuthenticationsConfig(AppConfig):
    name = "authentications"
    verbose_name = "Business Central"
