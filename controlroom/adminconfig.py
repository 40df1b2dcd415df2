from django.contrib.admin.apps import AdminConfig


class ControlRoomAdminConfig(AdminConfig):
    """django.contrib.admin, with the control room's site as the default `admin.site`."""

    default_site = "controlroom.site.ControlRoomSite"
