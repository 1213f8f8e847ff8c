"""URL configuration: everything is served by the ``demo`` app."""

from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
]
