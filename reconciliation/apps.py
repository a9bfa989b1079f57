from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'reconciliation'
