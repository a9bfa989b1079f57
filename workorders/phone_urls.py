"""The field technician's phone pages, under /workorders/m/ (the service worker's scope)."""

from django.urls import path

from workorders import phone

urlpatterns = [
    path("", phone.my_orders, name="phone-orders"),
    path("sw.js", phone.service_worker, name="phone-sw"),
    path("<uuid:uid>/", phone.order_page, name="phone-order"),
    path("<uuid:uid>/state/", phone.order_state, name="phone-state"),
    path("<uuid:uid>/photos/<int:photo_id>/", phone.photo, name="phone-photo"),
]
