import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reconciliation import services
from reconciliation.ledger_formats import FORMATS, LedgerFormatError


class Command(BaseCommand):
    help = "Import a channel bill or bank statement into the ledger. All or nothing; the same file twice is a no-op."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--json", action="store_true", help="print the import report as JSON")

    def handle(self, *args, **options):
        path: Path = options["path"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        try:
            report = services.ledger_import(data=data, fmt=options["format"], original_name=path.name)
        except LedgerFormatError as exc:
            raise CommandError(f"{path.name} was not imported: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        elif report.duplicate_file:
            self.stdout.write(f"{path.name}: already imported ({report.entries} entries); nothing changed.")
        else:
            self.stdout.write(
                f"{path.name}: {report.entries} entries, {report.new} new, {report.already_known} already in the "
                f"ledger; reconciling {', '.join(report.business_dates) or 'nothing'}."
            )
