import json
from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reconciliation import services


class Command(BaseCommand):
    help = "Reconcile one business day now and print the counts per outcome."

    def add_arguments(self, parser):
        parser.add_argument("business_date", help="YYYY-MM-DD (Asia/Shanghai business day)")
        parser.add_argument("--json", action="store_true", help='print {"outcomes": {...}, ...} as JSON')
        parser.add_argument("--today", help="pretend today is this date (for settlement windows)")

    def handle(self, *args, **options):
        try:
            day = date.fromisoformat(options["business_date"])
            today = date.fromisoformat(options["today"]) if options["today"] else None
        except ValueError as exc:
            raise CommandError(f"Dates are YYYY-MM-DD: {exc}") from None
        try:
            run = services.reconcile_run(business_date=day, today=today, trigger="command")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "business_date": day.isoformat(),
                        "run": run.pk,
                        "outcomes": run.outcomes,
                        "summary": run.summary,
                    },
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(f"Reconciled {day.isoformat()} ({run.summary.get('journal_lines', 0)} journal lines):")
        for outcome, count in run.outcomes.items():
            if count:
                self.stdout.write(f"  {outcome:<22} {count}")
        cash = run.summary.get("cash", {})
        if cash.get("count"):
            self.stdout.write(f"  cash (reported apart)  {cash['count']} lines, {cash['amount']} yuan")
        for year in run.summary.get("unknown_calendar_years", []):
            self.stderr.write(f"warning: no holiday data for {year}; assumed Monday–Friday working days")
