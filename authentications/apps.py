from django.apps import AppConfig


class AuthenticationsConfig(AppConfig):
    name = "authentications"
    verbose_name = "Business Central"

    def ready(self):
        from authentications import checks  # noqa: F401 - registers the system checks
        from authentications.operations import metrics  # noqa: F401 - its receivers count
