"""SLA breaches and escalation steps (placeholder until the escalation tick lands)."""


def tick() -> int:
    return 0
