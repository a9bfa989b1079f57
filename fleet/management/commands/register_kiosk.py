from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError

from fleet import services
from fleet.models import Site

# The command-line names of the model fields an operator sets, so an error points at what to change.
OPTION_OF_FIELD = {
    "serial": "SERIAL",
    "site": "--site",
    "model": "--model",
    "asset_tag": "--asset-tag",
    "heartbeat_interval_s": "--interval",
    "grace_s": "--grace",
}


def validation_message(exc: ValidationError) -> str:
    """A ValidationError as one line naming each option and its problem."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            " ".join(messages)
            if field == NON_FIELD_ERRORS
            else f"{OPTION_OF_FIELD.get(field, field)}: {' '.join(messages)}"
            for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Register a kiosk at a site and print its device token. The token goes alone to standard output, so "
        "TOKEN=$(manage.py register_kiosk …) captures it; it is shown once and stored only as a hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("serial", help="the kiosk's serial number")
        parser.add_argument("--site", required=True, help="code of the service hall (Site) the kiosk stands in")
        parser.add_argument("--model", default="", help="vendor model name")
        parser.add_argument("--asset-tag", default=None, help="the operator's asset tag (unique)")
        parser.add_argument("--interval", type=int, default=None, help="heartbeat interval in seconds")
        parser.add_argument("--grace", type=int, default=None, help="seconds of silence past the interval")

    def handle(self, *args, serial, site, model, asset_tag, interval, grace, **options):
        try:
            site_obj = Site.objects.select_related("region").get(code=site)
        except Site.DoesNotExist:
            raise CommandError(f"Unknown site {site!r}: no service hall has that code.") from None
        try:
            kiosk, token = services.kiosk_register(
                site=site_obj,
                serial=serial,
                model=model,
                asset_tag=asset_tag,
                heartbeat_interval_s=interval,
                grace_s=grace,
            )
        except ValidationError as exc:
            raise CommandError(f"Kiosk {serial!r} not registered. {validation_message(exc)}") from None
        self.stderr.write(
            f"Registered kiosk {kiosk.serial} at {site_obj.name} ({site_obj.code}), heartbeat every "
            f"{kiosk.heartbeat_interval_s} s, grace {kiosk.grace_s} s. Its device token, shown only now:"
        )
        self.stdout.write(token)
