"""A test-only app: the model the import path must store exactly as Django would."""

from django.apps import AppConfig


class ImportModelsConfig(AppConfig):
    name = "tests.importmodels"
    label = "importmodels"
    default_auto_field = "django.db.models.BigAutoField"
