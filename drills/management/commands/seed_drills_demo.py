from django.core.management.base import BaseCommand

from drills import demo


class Command(BaseCommand):
    help = "Drill demo data: the last two quarters' drills with scores and reports, next quarter's planned. Idempotent."

    def handle(self, *args, **options):
        result = demo.seed_drills_demo()
        if not result.created:
            self.stdout.write("The drill demo data already exists (or there is no fleet yet); nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Created {result.drills} drills."))
