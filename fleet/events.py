"""Events the fleet publishes after commit. Other apps (incidents, the live board) subscribe to these signals.

Each signal is sent once per committed change, with plain data (no model instances), so a receiver can hand it
to a Celery task or a channel layer as is.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.dispatch import Signal


@dataclass(frozen=True)
class KioskFlip:
    kiosk_id: int
    serial: str
    region_id: int
    from_status: str
    to_status: str
    reason: str
    detail: str
    occurred_at: datetime
    while_flapping: bool

    def as_dict(self) -> dict:
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        return data


# flips: list[KioskFlip] — status changes that are not part of a flapping episode.
kiosk_status_changed = Signal()
# kiosk_id, serial, region_id, started (bool), flips_in_window
kiosk_flapping_changed = Signal()
# kiosks: list[tuple[serial, region_id]] — anything visible about these kiosks changed (board refresh).
kiosks_updated = Signal()
# A remote command finished: the kiosk reported success or failure, it expired (deferred ones included) or it was
# cancelled (by a person, or because its kiosk retired). Sent once per command, on commit, with keyword arguments
# command_id (str, the UUID), kiosk_id, serial, region_id, kind, status ("succeeded", "failed", "expired",
# "cancelled"), detail (the kiosk's result text, or who cancelled) and completed_at (an aware datetime).
command_finished = Signal()
