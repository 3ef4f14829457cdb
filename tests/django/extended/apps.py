from django.apps import AppConfig


class ExtendedConfig(AppConfig):
    name = "extended"
    default_auto_field = "django.db.models.BigAutoField"
