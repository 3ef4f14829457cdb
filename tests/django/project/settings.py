"""Settings for the adoption tests: one PostgreSQL database, named by DATABASE_URL."""
import os
from urllib.parse import unquote, urlsplit

SECRET_KEY = "ledger-adoption-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.postgres",
    # The seed's models as the tests use them (`myapp`), or exactly as the cheat sheet gives them
    # (`sheet`): both name the tables `users`, `accounts`, `transactions`, so only one is installed.
    os.environ.get("LEDGER_DJANGO_APP", "myapp"),
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _database(url):
    parts = urlsplit(url)
    host = unquote(parts.hostname or "") if parts.hostname else ""
    # A unix-socket directory is given percent-encoded in the host (postgres://u@%2Ftmp:5432/db),
    # which urlsplit lower-cases and keeps encoded.
    netloc_host = parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0]
    if netloc_host.startswith("%2F") or netloc_host.startswith("%2f"):
        host = unquote(netloc_host)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
    }


DATABASES = {"default": _database(os.environ["DATABASE_URL"])}
