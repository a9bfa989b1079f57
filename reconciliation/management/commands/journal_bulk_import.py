import gzip
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reconciliation import bulk


class Command(BaseCommand):
    help = (
        "Ingest a bulk journal file (the kiosk journal CSV with a `kiosk` column: many kiosks and days in one file; "
        "docs/file-formats.md, 'Bulk journal files'). Bad lines are refused alone; the same file twice is a no-op. "
        "A file ending in .gz is un-gzipped first."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        path: Path = options["path"]
        try:
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        report = bulk.journal_bulk_ingest(data=data, original_name=path.name)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        if report.rejected_file:
            raise CommandError(f"{path.name} was refused as a whole (its bytes are kept): {report.rejected_file}")
        if options["json"]:
            return
        if report.duplicate_file:
            self.stdout.write(f"{path.name}: already ingested ({report.lines} lines); nothing changed.")
            return
        self.stdout.write(
            f"{path.name}: {report.lines} lines of {report.kiosks} kiosks, {report.accepted} new, "
            f"{report.duplicate} already recorded, {report.rejected} refused; "
            f"reconciling {', '.join(report.business_dates) or 'nothing'}."
        )
        for rejection in report.rejections[:20]:
            self.stdout.write(f"  line {rejection['line']}: {rejection['reason']}")
        gaps = sum(len(day["gaps"]) for day in report.days)
        if gaps:
            self.stdout.write(f"  {gaps} sequence gap(s) in the kiosk-days of the file")
