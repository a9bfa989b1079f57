from django.core.management.base import BaseCommand

from parts import demo


class Command(BaseCommand):
    help = "Spare-parts demo data: the catalog, a store per district and a van per technician, stocked. Idempotent."

    def handle(self, *args, **options):
        result = demo.seed_parts_demo()
        if not result.created:
            self.stdout.write("The spare-parts demo data already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Created {result.parts} parts and {result.depots} stocked depots."))
