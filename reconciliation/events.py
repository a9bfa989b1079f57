"""Events reconciliation publishes after commit (the live exception queue subscribes)."""

from django.dispatch import Signal

# business_date: the day whose items changed.
recon_items_changed = Signal()
