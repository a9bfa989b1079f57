from django.core.management.base import BaseCommand

from reconciliation import demo


class Command(BaseCommand):
    help = "Load fee tariffs and a few days of demo journals and settlements (idempotent), then reconcile them."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=3)
        parser.add_argument("--kiosks", type=int, default=60)

    def handle(self, *args, **options):
        seeded = demo.seed(days=options["days"], kiosks=options["kiosks"])
        if seeded:
            self.stdout.write(f"Reconciliation demo: seeded and reconciled {', '.join(d.isoformat() for d in seeded)}.")
        else:
            self.stdout.write("Reconciliation demo: already seeded (or no kiosks yet); nothing changed.")
