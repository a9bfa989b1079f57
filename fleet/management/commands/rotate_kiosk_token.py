from django.core.management.base import BaseCommand, CommandError

from fleet import demo, services
from fleet.models import Kiosk


def kiosk_by_serial(serial: str) -> Kiosk:
    try:
        return Kiosk.objects.select_related("site").get(serial=serial)
    except Kiosk.DoesNotExist:
        raise CommandError(f"Unknown kiosk {serial!r}: no kiosk has that serial number.") from None


class Command(BaseCommand):
    help = (
        "Issue a new device token for a kiosk and revoke its current one; prints the new token alone on "
        "standard output. The kiosk gets 401 until the new token is installed on it."
    )

    def add_arguments(self, parser):
        parser.add_argument("serial", help="the kiosk's serial number")

    def handle(self, *args, serial, **options):
        kiosk = kiosk_by_serial(serial)
        if kiosk.status == Kiosk.Status.RETIRED:
            raise CommandError(f"Kiosk {serial!r} is retired; a retired kiosk gets no new token.")
        token = services.credential_issue(kiosk=kiosk)
        self.stderr.write(f"Issued a new token for kiosk {kiosk.serial}; its previous token is revoked.")
        # A simulated demo kiosk would otherwise be locked out for good: "install" the token on it.
        if demo.keyring_update(kiosk.serial, token):
            self.stderr.write(f"Updated the demo keyring {demo.keyring_path()} so the simulator uses it.")
        self.stdout.write(token)
