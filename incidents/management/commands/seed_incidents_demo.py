from django.core.management.base import BaseCommand

from incidents import demo


class Command(BaseCommand):
    help = (
        "Incident response demo data: notification channels that print to the console, and 90 days of closed "
        "incidents on the demo fleet for the likely-cause statistics. Idempotent."
    )

    def handle(self, *args, **options):
        result = demo.seed_incidents_demo()
        if not result.created:
            self.stdout.write("The incident demo data already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(f"Created {result.channels} notification channels and {result.history} past incidents.")
        )
