# The waiting outcome (a ledger entry whose journal is not due yet). Its operations are added with the outcome.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0010_chinese_names_for_models_and_fields"),
    ]

    operations = []
