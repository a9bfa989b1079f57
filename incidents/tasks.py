"""Thin, idempotent tasks: each calls a service that may run twice or concurrently without harm."""

from celery import shared_task

from incidents import engine, services


@shared_task(ignore_result=True)
def engine_tick() -> dict:
    """Read the fleet's change feed and the fault reports into incidents, then record command results and
    recoveries. Run every few seconds by beat, and woken on commit of a flip."""
    result = engine.run_until_drained()
    synced = services.incident_commands_sync()
    resolved = services.incidents_auto_resolve()
    proposed = services.incidents_propose_onsite_after_silence()
    return {"opened": result.opened, "rows": result.rows, "commands": synced, "resolved": resolved, "onsite": proposed}


@shared_task(ignore_result=True)
def send_notifications() -> int:
    """Send the notifications that are due (incidents/notify.py)."""
    from incidents import notify

    return notify.send_due()


@shared_task(ignore_result=True)
def escalate() -> int:
    """Record SLA breaches and run escalation steps that are due (incidents/escalation.py)."""
    from incidents import escalation

    return escalation.tick()
