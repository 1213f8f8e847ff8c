from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("styled", views.styled),
    path("api/echo", views.api_echo),
    path("api/query", views.api_query),
    path("stream", views.stream),
    path("file", views.file),
    path("error", views.error),
    path("contact", views.contact),
    path("upload", views.upload),
]
