from django.urls import path

from workorders.consumers import WorkOrdersConsumer

websocket_urlpatterns = [path("ws/workorders/", WorkOrdersConsumer.as_asgi())]
