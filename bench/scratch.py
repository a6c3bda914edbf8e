"""Start Django for a benchmark: development settings on a scratch database, then migrate.

Every benchmark runs against a throw-away SQLite file in its work folder unless
BENCH_DATABASE_URL names a scratch database; the fakes' hosts come in through `env`.
"""

import os


def start_django(workdir, **env):
    """Set the environment (`env` adds or overrides variables), set Django up, migrate."""
    defaults = {
        "DJANGO_SETTINGS_MODULE": "bcconnect.settings",
        "DEBUG": "true",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
        or f"sqlite:///{workdir / 'bench.sqlite3'}",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "dummymail://",
    }
    os.environ.update({**defaults, **env})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
