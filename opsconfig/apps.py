from django.apps import AppConfig


class OpsConfigApp(AppConfig):
    name = "opsconfig"
    verbose_name = "Operator configuration"
