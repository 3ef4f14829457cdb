from django.apps import AppConfig


class SheetConfig(AppConfig):
    name = "sheet"
    default_auto_field = "django.db.models.BigAutoField"
