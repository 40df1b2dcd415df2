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

# admin.site is the control room's site (controlroom.site.ControlRoomSite, installed as the default
# admin site in INSTALLED_APPS): its headers and the dashboard landing page live there.
