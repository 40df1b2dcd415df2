from django.contrib import admin
from django.urls import path

from halobestie.dev_routes import urlpatterns as dev_urlpatterns
from halobestie.health import health, ready
from halobestie.metrics import metrics_view
from halobestie.routers import api

urlpatterns = [
    path("health", health, name="health"),
    path("ready", ready, name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    *dev_urlpatterns,
]

admin.site.site_header = "HaloBestie control room"
admin.site.site_title = "HaloBestie ops"
