from django.core.management.base import BaseCommand

from fleet import services


class Command(BaseCommand):
    help = (
        "Run one health pass now (what the Celery beat schedule runs every few seconds): silent kiosks go "
        "offline, expired maintenance ends, calmed flapping ends. Prints the counts."
    )

    def handle(self, *args, **options):
        result = services.health_sweep()
        self.stdout.write(
            f"went offline: {result.went_offline}, maintenance ended: {result.maintenance_ended}, "
            f"flapping ended: {result.flapping_ended}"
        )
