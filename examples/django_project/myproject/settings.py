"""Settings for the example Django project served by rsgi.

    rsgi myproject.wsgi:application --chdir examples/django_project

The project needs no database. The SECRET_KEY below is for tests and local
runs only; a real deployment reads its own from the environment.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "test-only-insecure-key-do-not-use-in-production"
)
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "myproject.urls"
WSGI_APPLICATION = "myproject.wsgi.application"

# No models, no sessions, no admin: the project runs without a database.
DATABASES = {}

TEMPLATES = []

USE_TZ = True
TIME_ZONE = "UTC"

# Send unhandled-exception tracebacks to stderr, i.e. the server's error log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
