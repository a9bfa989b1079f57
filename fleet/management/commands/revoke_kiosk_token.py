from django.core.management.base import BaseCommand

from fleet import services
from fleet.management.commands.rotate_kiosk_token import kiosk_by_serial


class Command(BaseCommand):
    help = "Revoke a kiosk's device token: it gets 401 until rotate_kiosk_token issues a new one."

    def add_arguments(self, parser):
        parser.add_argument("serial", help="the kiosk's serial number")

    def handle(self, *args, serial, **options):
        kiosk = kiosk_by_serial(serial)
        if services.credential_revoke(kiosk=kiosk, reason="revoked"):
            self.stdout.write(
                f"Revoked the token of kiosk {kiosk.serial}. It gets 401 until rotate_kiosk_token issues a new one."
            )
        else:
            self.stdout.write(f"Kiosk {kiosk.serial} had no active token; nothing changed.")
