from django.urls import path

from reconciliation.consumers import QueueConsumer

websocket_urlpatterns = [path("ws/reconciliation/", QueueConsumer.as_asgi())]
