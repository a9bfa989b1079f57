"""Default settlement windows: 1–3 working days for every non-cash channel (editable in the admin)."""

from django.db import migrations


def seed(apps, schema_editor):
    SettlementWindow = apps.get_model("reconciliation", "SettlementWindow")
    for channel in ("card", "wechat", "alipay", "unionpay_qr"):
        SettlementWindow.objects.get_or_create(channel=channel, defaults={"min_days": 1, "max_days": 3})


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
