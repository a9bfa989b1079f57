from django.urls import path

from incidents.consumers import IncidentsConsumer

websocket_urlpatterns = [path("ws/incidents/", IncidentsConsumer.as_asgi())]
