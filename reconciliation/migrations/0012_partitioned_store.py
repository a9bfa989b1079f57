"""Journal lines and ledger entries move to tables partitioned by business day.

Each table is rebuilt: the old one is renamed, a partitioned one takes its name with only the indexes the run, the
ingest, the lookup and the console use (see the models), one partition per day that has rows plus a default
partition that catches any row whose day has no partition yet (reconciliation/partitions.py creates days ahead and
moves such rows out), the rows are copied over and the old table is dropped. The primary key becomes (id,
business_date), as PostgreSQL requires of a partitioned table; ids keep coming from one sequence, continued from the
old table's highest. Foreign keys to and from these tables are dropped (the models say why).

On a large existing database this copies every row in one transaction: plan a maintenance window, or archive old
months first (`manage.py recon_archive`).
"""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _rebuild(schema_editor, table, drop_names, create):
    """Rename `table` away, build the partitioned table in its place with `create` (statements with {t}), copy the rows
    into a partition per day, drop the old table."""
    execute = schema_editor.execute
    old = f"{table}_unpartitioned"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (old_sequence,) = cursor.fetchone()
    execute(f"ALTER TABLE {table} RENAME TO {old}")
    execute(f"ALTER INDEX {table}_pkey RENAME TO {old}_pkey")
    for kind, name in drop_names:
        if kind == "constraint":
            execute(f"ALTER TABLE {old} DROP CONSTRAINT {name}")
        else:
            execute(f"DROP INDEX {name}")
    if old_sequence:
        execute(f"ALTER SEQUENCE {old_sequence} RENAME TO {old}_id_seq")
    execute(f"CREATE SEQUENCE {table}_id_seq")
    execute(f"SELECT setval('{table}_id_seq', coalesce((SELECT max(id) FROM {old}), 0) + 1, false)")
    execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (business_date)"
    )
    execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
    execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, business_date)")
    for statement in create:
        execute(statement.format(t=table))
    execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT business_date FROM {old} ORDER BY 1")
        days = [day for (day,) in cursor.fetchall()]
    for day in days:
        execute(
            f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
        )
    execute(f"INSERT INTO {table} SELECT * FROM {old}")
    execute(f"DROP TABLE {old} CASCADE")
    execute(f"ANALYZE {table}")


def partition_the_store(apps, schema_editor):
    _rebuild(
        schema_editor,
        "reconciliation_journalline",
        [
            ("constraint", "journal_line_unique_txn"),
            ("index", "journal_line_day_idx"),
            ("index", "journal_line_key_idx"),
            ("index", "journal_line_payer_idx"),
            ("index", "journal_line_kiosk_day_seq_idx"),
        ],
        [
            "ALTER TABLE {t} ADD CONSTRAINT journal_line_unique_day_txn UNIQUE (kiosk_id, business_date, txn_id)",
            "CREATE INDEX journal_line_ref_idx ON {t} (channel_ref)",
            "CREATE INDEX journal_line_payer_idx ON {t} (payer_ref)",
        ],
    )
    _rebuild(
        schema_editor,
        "reconciliation_ledgerentry",
        [
            ("constraint", "ledger_entry_unique_key"),
            ("index", "ledger_entry_day_idx"),
            ("index", "ledger_entry_payer_idx"),
        ],
        [
            "ALTER TABLE {t} ADD CONSTRAINT ledger_entry_unique_day_key UNIQUE (channel, channel_ref, business_date)",
            "CREATE INDEX ledger_entry_payer_idx ON {t} (payer_ref, service_code)",
        ],
    )
    schema_editor.execute(
        "INSERT INTO reconciliation_journalday (kiosk_id, business_date, lines, first_seq, last_seq, updated_at) "
        "SELECT kiosk_id, business_date, count(*), min(seq), max(seq), now() FROM reconciliation_journalline "
        "GROUP BY kiosk_id, business_date"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0011_drill_stand_ins"),
        ("reconciliation", "0011_awaiting_journal"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ArchivedMonth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("journal", "Kiosk journal lines"), ("ledger", "Ledger entries")],
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                ("month", models.DateField(help_text="The first day of the month.", verbose_name="month")),
                ("path", models.CharField(max_length=500, verbose_name="archive file")),
                ("rows", models.BigIntegerField(verbose_name="rows")),
                ("checksum", models.CharField(max_length=64, verbose_name="checksum of the rows")),
                ("sha256", models.CharField(max_length=64, verbose_name="SHA-256 of the file")),
                ("size", models.BigIntegerField(verbose_name="size (bytes)")),
                (
                    "status",
                    models.CharField(
                        choices=[("archived", "Archived"), ("restored", "Restored")],
                        default="archived",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                ("archived_at", models.DateTimeField(auto_now_add=True, verbose_name="archived at")),
                ("restored_at", models.DateTimeField(blank=True, null=True, verbose_name="restored at")),
            ],
            options={
                "verbose_name": "archived month",
                "verbose_name_plural": "archived months",
                "ordering": ["-month", "kind"],
            },
        ),
        migrations.CreateModel(
            name="JournalBatch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sha256", models.CharField(max_length=64, unique=True, verbose_name="SHA-256 checksum")),
                ("original_name", models.CharField(blank=True, max_length=255, verbose_name="file name")),
                ("content", models.BinaryField(verbose_name="content")),
                ("size", models.BigIntegerField(verbose_name="size (bytes)")),
                ("received_at", models.DateTimeField(auto_now_add=True, verbose_name="received at")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("received", "Received"),
                            ("parsed", "Parsed"),
                            ("rejected", "Rejected"),
                            ("failed", "Failed"),
                        ],
                        default="received",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                ("kiosks", models.PositiveIntegerField(default=0, verbose_name="kiosks")),
                ("business_dates", models.JSONField(blank=True, default=list, verbose_name="business dates")),
                ("lines_total", models.PositiveIntegerField(default=0, verbose_name="lines")),
                ("lines_accepted", models.PositiveIntegerField(default=0, verbose_name="lines accepted")),
                ("lines_duplicate", models.PositiveIntegerField(default=0, verbose_name="lines already recorded")),
                ("lines_rejected", models.PositiveIntegerField(default=0, verbose_name="lines rejected")),
                ("rejections", models.JSONField(blank=True, default=list, verbose_name="rejected lines")),
                ("error", models.TextField(blank=True, verbose_name="error")),
            ],
            options={
                "verbose_name": "bulk journal file",
                "verbose_name_plural": "bulk journal files",
                "ordering": ["-received_at"],
            },
        ),
        migrations.CreateModel(
            name="JournalDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("business_date", models.DateField(verbose_name="business date")),
                ("lines", models.PositiveIntegerField(default=0, verbose_name="lines")),
                ("first_seq", models.BigIntegerField(verbose_name="first sequence number")),
                ("last_seq", models.BigIntegerField(verbose_name="last sequence number")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
            ],
            options={
                "verbose_name": "kiosk journal day",
                "verbose_name_plural": "kiosk journal days",
            },
        ),
        migrations.AddConstraint(
            model_name="archivedmonth",
            constraint=models.UniqueConstraint(fields=("kind", "month"), name="archived_month_unique"),
        ),
        migrations.AddConstraint(
            model_name="archivedmonth",
            constraint=models.CheckConstraint(condition=models.Q(("month__day", 1)), name="archived_month_first_day"),
        ),
        migrations.AddConstraint(
            model_name="archivedmonth",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["archived", "restored"])), name="archived_month_status_valid"
            ),
        ),
        migrations.AddField(
            model_name="journalbatch",
            name="uploaded_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="uploaded by",
            ),
        ),
        migrations.AddIndex(
            model_name="journalday",
            index=models.Index(fields=["business_date"], name="journal_day_date_idx"),
        ),
        migrations.AddField(
            model_name="journalfile",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="files",
                to="reconciliation.journalbatch",
                verbose_name="bulk file",
            ),
        ),
        migrations.AddField(
            model_name="journalday",
            name="kiosk",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="fleet.kiosk", verbose_name="kiosk"
            ),
        ),
        migrations.AddConstraint(
            model_name="journalbatch",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["received", "parsed", "rejected", "failed"])),
                name="journal_batch_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="journalday",
            constraint=models.UniqueConstraint(fields=("kiosk", "business_date"), name="journal_day_unique"),
        ),
        migrations.AddConstraint(
            model_name="journalday",
            constraint=models.CheckConstraint(
                condition=models.Q(("last_seq__gte", models.F("first_seq"))), name="journal_day_seq_ordered"
            ),
        ),
        migrations.AlterField(
            model_name="reconitem",
            name="journal_line",
            field=models.OneToOneField(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="recon_item",
                to="reconciliation.journalline",
                verbose_name="kiosk journal line",
            ),
        ),
        migrations.AlterField(
            model_name="reconitem",
            name="ledger_entry",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="recon_items",
                to="reconciliation.ledgerentry",
                verbose_name="ledger entry",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="journalline",
                    name="journal_line_unique_txn",
                ),
                migrations.RemoveConstraint(
                    model_name="ledgerentry",
                    name="ledger_entry_unique_key",
                ),
                migrations.RemoveIndex(
                    model_name="journalline",
                    name="journal_line_day_idx",
                ),
                migrations.RemoveIndex(
                    model_name="journalline",
                    name="journal_line_key_idx",
                ),
                migrations.RemoveIndex(
                    model_name="journalline",
                    name="journal_line_payer_idx",
                ),
                migrations.RemoveIndex(
                    model_name="journalline",
                    name="journal_line_kiosk_day_seq_idx",
                ),
                migrations.RemoveIndex(
                    model_name="ledgerentry",
                    name="ledger_entry_day_idx",
                ),
                migrations.RemoveIndex(
                    model_name="ledgerentry",
                    name="ledger_entry_payer_idx",
                ),
                migrations.AlterField(
                    model_name="journalline",
                    name="kiosk",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="journal_lines",
                        to="fleet.kiosk",
                        verbose_name="kiosk",
                    ),
                ),
                migrations.AlterField(
                    model_name="journalline",
                    name="source_file",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="lines",
                        to="reconciliation.journalfile",
                        verbose_name="source file",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="kiosk",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="fleet.kiosk",
                        verbose_name="kiosk",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="source_file",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="entries",
                        to="reconciliation.ledgerfile",
                        verbose_name="source file",
                    ),
                ),
                migrations.AddIndex(
                    model_name="journalline",
                    index=models.Index(
                        fields=["channel_ref"],
                        name="journal_line_ref_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="journalline",
                    index=models.Index(
                        fields=["payer_ref"],
                        name="journal_line_payer_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="ledgerentry",
                    index=models.Index(
                        fields=["payer_ref", "service_code"],
                        name="ledger_entry_payer_idx",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="journalline",
                    constraint=models.UniqueConstraint(
                        fields=("kiosk", "business_date", "txn_id"),
                        name="journal_line_unique_day_txn",
                        violation_error_message="This kiosk already recorded a transaction with this id that day.",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="ledgerentry",
                    constraint=models.UniqueConstraint(
                        fields=("channel", "channel_ref", "business_date"),
                        name="ledger_entry_unique_day_key",
                        violation_error_message="The ledger already has this channel order number on that day.",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(partition_the_store, migrations.RunPython.noop)],
        ),
    ]
