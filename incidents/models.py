"""Incidents (故障事件) — the contingency workflow: report, remote fix, onsite work orders, citizen guidance.

Not built yet: this app will subscribe to fleet.events (kiosk_status_changed, kiosk_flapping_changed) and
open an incident per kiosk and fault category."""
