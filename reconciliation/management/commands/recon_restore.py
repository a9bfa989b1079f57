from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from reconciliation import retention
from reconciliation.models import ArchivedMonth


class Command(BaseCommand):
    help = (
        "Restore an archived month of kiosk journal lines and/or ledger entries into the database for an audit: the "
        "file's SHA-256, and every day's row count and checksum, are checked against its manifest, or nothing is "
        "restored. The month stays until archived again with recon_archive --month."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="the month to restore, YYYY-MM")
        parser.add_argument(
            "--kind", choices=ArchivedMonth.Kind.values, help="journal lines or ledger entries only (default: both)"
        )

    def handle(self, *args, **options):
        try:
            month = retention.month_parse(options["month"])
        except retention.Refused as refused:
            raise CommandError(refused.message) from None
        kinds = [options["kind"]] if options["kind"] else ArchivedMonth.Kind.values
        refusals = []
        for kind in kinds:
            try:
                report = retention.restore_month(kind=kind, month=month)
            except retention.Refused as refused:
                self.stderr.write(refused.message)
                refusals.append(refused.message)
                continue
            self.stdout.write(report.message)
        if refusals:
            raise CommandError(
                _("%(refused)s of %(asked)s months refused; see above.")
                % {"refused": len(refusals), "asked": len(kinds)}
            )
