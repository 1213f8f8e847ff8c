"""A minimal Django project for the benchmark: one view, no database, no templates.

The middleware is the usual stateless pair, so a request goes through Django's
real handler stack without touching sessions or a database.
"""

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "djangoproj.urls"
WSGI_APPLICATION = "djangoproj.wsgi.application"
DATABASES = {}
TEMPLATES = []
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING_CONFIG = None
