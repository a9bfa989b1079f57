import asyncio
import contextlib
import logging
import random
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fleet import demo
from fleet.simulator import FleetSimulator, SimulationSettings, kiosks_from_keyring


class Command(BaseCommand):
    help = (
        "Make the demo fleet (the kiosks in var/demo-tokens.json) send heartbeats to a KioskOps server through "
        "the device API, with wear, faults, outages and remote commands, until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        parser.add_argument("--rate", type=float, default=1.0, help="fault rate multiplier (0 for no faults)")
        parser.add_argument("--limit", type=int, default=None, help="simulate only the first N kiosks")
        parser.add_argument(
            "--speed",
            type=float,
            default=1.0,
            help="time compression of wear, fault arrival and repairs (heartbeat timing stays real)",
        )
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        parser.add_argument("--connections", type=int, default=20, help="most HTTP requests in flight at once")
        parser.add_argument("--summary-every", type=float, default=30.0, help="seconds between summary lines")
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="random seed of the kiosks' behaviour, to replay a run (default: new)",
        )
        parser.add_argument("--keyring", default=None, help="JSON file of {serial: token} (default: the demo's)")

    def handle(self, *args, **options):
        if options["rate"] < 0 or options["speed"] <= 0:
            raise CommandError("--rate must be 0 or more and --speed more than 0.")
        if options["connections"] < 1:
            raise CommandError("--connections must be at least 1.")
        keyring = Path(options["keyring"]) if options["keyring"] else demo.keyring_path()
        tokens = demo.keyring_read(keyring)
        if not tokens:
            raise CommandError(f"No kiosk tokens in {keyring}. Run `manage.py seed_demo` first.")
        # The demo plan knows each kiosk's software version and interval; start from those, not from guesses.
        plan = demo.build_plan().kiosks
        known = {k.serial: (k.software_version, k.heartbeat_interval_s) for k in plan}
        halls = {k.serial: k.site_code for k in plan}
        # httpx logs every request at INFO; hundreds a minute would drown the summary lines.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        asyncio.run(self._run(options, keyring, tokens, known, halls))

    async def _run(self, options, keyring, tokens, known, halls):
        simulator_settings = SimulationSettings(rate=options["rate"], speed=options["speed"])
        seed = options["seed"] if options["seed"] is not None else random.SystemRandom().randrange(10**6)
        self._log(f"kiosk behaviour seed {seed} (pass --seed {seed} to roll the same dice again)")
        loop = asyncio.get_running_loop()
        kiosks = kiosks_from_keyring(
            tokens,
            now=loop.time(),
            settings=simulator_settings,
            seed=seed,
            limit=options["limit"],
            known=known,
            halls=halls,
        )
        simulator = FleetSimulator(
            options["url"],
            kiosks,
            max_connections=options["connections"],
            summary_every=options["summary_every"],
            log=self._log,
            keyring=keyring,
            read_keyring=demo.keyring_read,
            clock=loop.time,
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
                loop.add_signal_handler(signum, simulator.stop.set)
        await simulator.run(duration=options["duration"])

    def _log(self, line: str) -> None:
        # Under honcho stdout is a pipe: flush each line so the log shows it now, not a buffer later.
        self.stdout.write(line)
        self.stdout.flush()
