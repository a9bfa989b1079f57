from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from reconciliation import retention
from reconciliation.models import ArchivedMonth


class Command(BaseCommand):
    help = (
        "Archive a month of kiosk journal lines and/or ledger entries past the retention to a gzip'd CSV file with a "
        "manifest (docs/file-formats.md, Archives), verify it, and drop the month's partitions. "
        "Exits non-zero, with the reason, when a month is refused."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--month", help="the month to archive, YYYY-MM")
        which.add_argument("--due", action="store_true", help="every month older than the retention (the nightly task)")
        which.add_argument("--list", action="store_true", help="list the archived and restored months")
        parser.add_argument(
            "--kind", choices=ArchivedMonth.Kind.values, help="journal lines or ledger entries only (default: both)"
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would be archived; change nothing")
        parser.add_argument("--today", help="pretend today is this date, YYYY-MM-DD (for the retention)")

    def handle(self, *args, **options):
        if options["list"]:
            return self._list()
        today = None
        if options["today"]:
            try:
                today = date.fromisoformat(options["today"])
            except ValueError:
                raise CommandError(_("Dates are YYYY-MM-DD: %(value)s") % {"value": options["today"]}) from None
        if options["due"]:
            pairs = retention.months_due(today=today)
            if options["kind"]:
                pairs = [(kind, month) for kind, month in pairs if kind == options["kind"]]
            if not pairs:
                self.stdout.write(_("No month is due for archiving."))
                return
        else:
            try:
                month = retention.month_parse(options["month"])
            except retention.Refused as refused:
                raise CommandError(refused.message) from None
            kinds = [options["kind"]] if options["kind"] else ArchivedMonth.Kind.values
            pairs = [(kind, month) for kind in kinds]

        refusals = []
        for kind, month in pairs:
            try:
                report = retention.archive_month(kind=kind, month=month, today=today, dry_run=options["dry_run"])
            except retention.Refused as refused:
                self.stderr.write(refused.message)
                refusals.append(refused.message)
                continue
            self.stdout.write(report.message)
        if refusals:
            raise CommandError(
                _("%(refused)s of %(asked)s months refused; see above.")
                % {"refused": len(refusals), "asked": len(pairs)}
            )

    def _list(self):
        records = ArchivedMonth.objects.order_by("month", "kind")
        if not records:
            self.stdout.write(_("No month has been archived."))
            return
        for record in records:
            self.stdout.write(
                f"{record.month:%Y-%m}  {record.kind:<8} {record.get_status_display():<10} {record.rows:>12}  "
                f"{record.path}"
            )
