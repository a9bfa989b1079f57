# The waiting outcome: a settled payment of a kiosk whose journal for the day is not due yet.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0010_chinese_names_for_models_and_fields"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reconitem",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("matched", "Matched"),
                    ("pending_settlement", "Pending settlement"),
                    ("awaiting_journal", "Awaiting the kiosk's journal"),
                    ("missing_in_ledger", "Paid but not reconciled"),
                    ("missing_in_journal", "Missing in kiosk journal"),
                    ("amount_mismatch", "Amount mismatch"),
                    ("fee_policy_mismatch", "Fee policy mismatch"),
                    ("duplicate_charge", "Duplicate charge"),
                    ("failed_but_settled", "Failed at kiosk but settled"),
                    ("payer_mismatch", "Payer mismatch"),
                    ("channel_not_accepted", "Channel not accepted"),
                    ("proposed_match", "Proposed match (review)"),
                ],
                max_length=32,
                verbose_name="outcome",
            ),
        ),
    ]
