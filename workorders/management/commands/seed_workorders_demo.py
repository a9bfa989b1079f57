from django.core.management.base import BaseCommand

from core import realtime
from workorders import demo


class Command(BaseCommand):
    help = (
        "Onsite work demo data: technicians with skills and bases, and work orders on the demo technician's phone "
        "for incidents a remote restart did not fix. Idempotent."
    )

    def handle(self, *args, **options):
        result = demo.seed_workorders_demo()
        realtime.flush()  # the incident pages' live updates, before the process (and its connections) goes
        if not result.created:
            self.stdout.write("The work-order demo data already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(f"Created {result.technicians} technicians' profiles and {result.orders} work orders.")
        )
