"""Sending incident notifications (placeholder until the sender lands)."""


def send_due() -> int:
    return 0
