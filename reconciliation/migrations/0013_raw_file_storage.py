"""Raw ledger files and bulk journal files are stored uncompressed (TOAST without pglz): compressing a 100 MB file
cost more time than anything else in its import, and these files are written once and read rarely. Kiosk journal
files (about 13 KB each) keep the default."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0012_partitioned_store"),
    ]

    operations = [
        migrations.RunSQL(
            [
                "ALTER TABLE reconciliation_ledgerfile ALTER COLUMN content SET STORAGE EXTERNAL",
                "ALTER TABLE reconciliation_journalbatch ALTER COLUMN content SET STORAGE EXTERNAL",
            ],
            [
                "ALTER TABLE reconciliation_ledgerfile ALTER COLUMN content SET STORAGE EXTENDED",
                "ALTER TABLE reconciliation_journalbatch ALTER COLUMN content SET STORAGE EXTENDED",
            ],
        ),
    ]
