from django.urls import path

import core.converters  # noqa: F401  registers <code:…> and <serial:…>
from guidance import views

app_name = "guidance"
urlpatterns = [
    path("", views.index, name="index"),
    path("halls/<code:code>/notice.pdf", views.notice, name="notice"),
    path("halls/<code:code>/stickers.pdf", views.stickers, name="stickers"),
    path("halls/<code:code>/notice-posted/", views.notice_posted, name="notice-posted"),
    path("kiosks/<serial:serial>/sticker.pdf", views.sticker, name="sticker"),
]
