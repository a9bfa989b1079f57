"""Citizens' pages, no login. The sticker's address /p/k/<serial>/ is printed on every kiosk: keep it stable
(technicians scan the same sticker to check in on site)."""

from django.urls import path

import core.converters  # noqa: F401  registers <code:…> and <serial:…>
from guidance import public_views

app_name = "public"
urlpatterns = [
    path("halls/<code:code>/", public_views.hall, name="hall"),
    path("k/<serial:serial>/", public_views.kiosk, name="kiosk"),
]
