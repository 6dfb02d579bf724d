"""App config for the legacy system's tables (``managed = False``, schema in ``sql/``)."""

from django.apps import AppConfig


class LegacyConfig(AppConfig):
    name = "console.legacy"
    label = "legacy"
    verbose_name = "Legacy system"
