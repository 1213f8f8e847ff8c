"""Settings for the example Django project served by rsgi.

    python manage.py collectstatic --noinput
    rsgi myproject.wsgi:application --static-map /static=./staticfiles

(from examples/django_project). collectstatic copies the apps' static files
into STATIC_ROOT under hashed names (ManifestStaticFilesStorage), and rsgi
serves that directory at STATIC_URL without calling Django.

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
    "django.contrib.staticfiles",
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

# Static files: `collectstatic` writes them to STATIC_ROOT, with a content
# hash in each name (base.5af66c1b1797.css) and a staticfiles.json manifest;
# rsgi --static-map /static=./staticfiles serves them, hashed names with
# `Cache-Control: immutable`.
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

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
