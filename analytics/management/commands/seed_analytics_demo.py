from django.core.management.base import BaseCommand

from analytics import demo


class Command(BaseCommand):
    help = (
        "Analytics demo data: 520 days of the demo fleet's history (incidents, the flips they caused, onsite visits "
        "and parts), the summaries computed, and last half-year's review published. Idempotent."
    )

    def handle(self, *args, **options):
        result = demo.seed_analytics_demo()
        if not result.created:
            self.stdout.write("The analytics demo history already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {result.incidents} older incidents, {result.flips} flips, {result.orders} onsite visits and "
                f"{result.kiosk_days} kiosk-days of figures."
            )
        )
