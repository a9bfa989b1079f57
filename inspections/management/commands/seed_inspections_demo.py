from django.core.management.base import BaseCommand

from core import realtime
from inspections import demo


class Command(BaseCommand):
    help = (
        "Inspection demo data: approved software versions, today's inspections for the demo technicians (some done, "
        "one failed check with its incident, late ones), and four months of past inspections. Idempotent."
    )

    def handle(self, *args, **options):
        result = demo.seed_inspections_demo()
        realtime.flush()
        if not result.created:
            self.stdout.write("The inspection demo data already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {result.created} inspections ({result.history} past); {result.today} are due today."
            )
        )
