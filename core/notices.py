"""Notices: messages that are not about one incident (a part below its reorder point, a lot about to expire, a stock
count or a drill coming due, an inspection missed), sent through the same channels as incidents.

An app posts them inside its own transaction; the app that owns the channels (incidents) registers a sink from its
``AppConfig.ready`` and stores each notice in its notification outbox, which its sender delivers with retries. So
parts, inspections and drills reach the operators' e-mail, WeCom, DingTalk and webhooks without importing the
incidents app, and without a second sender. Without a sink a notice is dropped and logged: the posting app works
on its own.

The key makes a notice idempotent: the same key posted twice is one message per channel. Put the period in it
("parts:reorder:D-01:PN-1001:2026-11-26") when the same condition should be told again the next day.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DRILL_PREFIX = "【演练】"


@dataclass(frozen=True)
class Notice:
    key: str  # at most 200 characters; the same key twice is one notice
    subject: str  # already rendered, in the console's language (render inside translation.override("zh-hans"))
    body: str
    region_id: int | None = None  # the region's channels and the channels of every region; None: every channel
    role: str = ""  # channels kept for this role (accounts Role value); "": the general channels
    user_ids: tuple[int, ...] = ()  # people e-mailed directly, besides the channels
    severity: int = 4  # 1–4 like an incident's P1–P4: a channel taking only P1–P2 gets notices of severity ≤ 2
    drill: bool = False  # a drill's notice: the subject says so, and it never goes to security contacts

    @property
    def title(self) -> str:
        subject = (
            self.subject if not self.drill or self.subject.startswith(DRILL_PREFIX) else DRILL_PREFIX + self.subject
        )
        return subject[:200]


_sinks: list[Callable[[list[Notice]], int]] = []


def register_sink(sink: Callable[[list[Notice]], int]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def unregister_sink(sink: Callable[[list[Notice]], int]) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def post(notices: Iterable[Notice]) -> int:
    """Hand the notices to every registered sink, in the caller's transaction. Returns how many messages were queued
    (a notice already queued under its key counts nothing)."""
    notices = [notice for notice in notices if notice.key]
    if not notices:
        return 0
    for notice in notices:
        if len(notice.key) > 200:
            raise ValueError(f"notice key longer than 200 characters: {notice.key[:60]}…")
    if not _sinks:
        logger.warning("%d notice(s) with no sink registered: dropped", len(notices))
        return 0
    return sum(sink(notices) for sink in _sinks)
