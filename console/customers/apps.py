from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "console.customers"
    label = "customers"
    verbose_name = "Customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from console.customers import signals  # noqa: F401  (connects the handlers)
