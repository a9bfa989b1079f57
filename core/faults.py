"""Faults handed in by one app for another to act on, without either importing the other.

reconciliation notices a burst of failed-but-settled payments at one kiosk; the incidents app turns it into an
incident. reconciliation calls ``report(...)`` inside its own transaction; the app that acts registers a sink
from its ``AppConfig.ready`` (incidents stores each report in its inbox, read past a cursor like the fleet's change
feed). Without a sink a report is dropped and logged: the reporting app works on its own.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultReport:
    kiosk_id: int
    fault_kind: str  # fleet.vocabulary.FaultKind
    occurred_at: datetime
    # The same key twice is one report (e.g. "recon:failed_but_settled:KS-00042:2026-11-25").
    key: str
    source: str = "reconciliation"
    title: str = ""
    evidence: dict = field(default_factory=dict)


_sinks: list[Callable[[list[FaultReport]], None]] = []


def register_sink(sink: Callable[[list[FaultReport]], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def report(reports: Iterable[FaultReport]) -> int:
    """Hand the reports to every registered sink, in the caller's transaction. Returns how many were handed in."""
    reports = list(reports)
    if not reports:
        return 0
    if not _sinks:
        logger.warning("%d fault report(s) with no sink registered: dropped", len(reports))
        return 0
    for sink in _sinks:
        sink(reports)
    return len(reports)
