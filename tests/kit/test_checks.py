"""The system checks catch settings that would weaken security."""

from authentications import checks


def ids(messages):
    return [message.id for message in messages]


def test_defaults_pass(settings):
    assert checks.check_fernet_keys(None) == []
    assert checks.check_public_urls(None) == []


def test_missing_fernet_keys(settings):
    settings.FERNET_KEYS = []
    assert ids(checks.check_fernet_keys(None)) == ["bcconnect.E001"]


def test_fernet_keys_equal_to_secret_key(settings):
    settings.FERNET_KEYS = [settings.SECRET_KEY]
    assert ids(checks.check_fernet_keys(None)) == ["bcconnect.E002"]


def test_public_base_url_must_be_https_outside_localhost(settings):
    settings.PUBLIC_BASE_URL = "http://bc.example.com"
    assert ids(checks.check_public_urls(None)) == ["bcconnect.E003"]
    settings.PUBLIC_BASE_URL = "http://localhost:8000"
    assert checks.check_public_urls(None) == []


def test_authority_and_api_hosts_must_be_https(settings):
    settings.BC_AUTHORITY_HOST = "http://login.example.com"
    settings.BC_API_HOST = "http://api.example.com"
    assert ids(checks.check_public_urls(None)) == ["bcconnect.E004", "bcconnect.E005"]


def test_notifications_without_email(settings):
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert ids(checks.check_email_for_notifications(None)) == ["bcconnect.W001"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert checks.check_email_for_notifications(None) == []
