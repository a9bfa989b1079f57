import unicodedata

from django.core.management.base import BaseCommand, CommandError

from fleet import demo


class Command(BaseCommand):
    help = (
        "Create the demo fleet (Shanghai's districts, ~40 service halls, ~300 kiosks) and one user per role. "
        "Idempotent: a second run changes nothing. Demo only: it prints passwords and writes device tokens "
        "to var/demo-tokens.json."
    )

    def handle(self, *args, **options):
        try:
            result = demo.seed_demo()
        except demo.DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        if not result.created:
            if result.tokens_reissued:
                self.stdout.write(
                    f"The demo fleet already exists. Re-issued {result.tokens_reissued} device tokens that were "
                    f"missing from {result.keyring_path}."
                )
            else:
                self.stdout.write("The demo fleet already exists; nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the demo fleet: {result.regions} districts, {result.sites} service halls, "
                f"{result.kiosks} kiosks."
            )
        )
        self.stdout.write(f"Device tokens (the simulator's keyring): {result.keyring_path}")
        self.stdout.write("")
        self.stdout.write(f"Demo users (password for all: {demo.DEMO_PASSWORD}):")
        district_names = {district.code: district.name for district in demo.DISTRICTS}
        for user in result.users:
            scope = "all districts" if user.regions is None else "、".join(district_names[c] for c in user.regions)
            role = user.role.label if user.role else "superuser"
            self.stdout.write(f"  {user.username:<11} {_pad(scope, 16)} {role}")


def _pad(text: str, columns: int) -> str:
    """Pad to a width in terminal columns: Chinese characters take two, so str.ljust misaligns them."""
    width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, columns - width)
