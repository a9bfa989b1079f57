"""Events reconciliation publishes after commit (the live exception queue subscribes)."""

from django.dispatch import Signal

# business_date: the day whose items changed. region_ids (optional): the regions of the kiosks whose items
# changed, [] for items of no known kiosk; left out when the change is city-wide (a reconcile run).
recon_items_changed = Signal()
