from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("live/", views.queue_live, name="queue-live"),
    path("acknowledge/", views.bulk_acknowledge, name="bulk-acknowledge"),
    path("report/", views.report, name="report"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/live/", views.detail_live, name="detail-live"),
    path("<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:pk>/move/", views.move, name="move"),
    path("<int:pk>/resolve/", views.resolve, name="resolve"),
    path("<int:pk>/close/", views.close, name="close"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/severity/", views.severity, name="severity"),
    path("<int:pk>/note/", views.note, name="note"),
    path("<int:pk>/checklist/<int:item_id>/", views.checklist, name="checklist"),
    path("<int:pk>/command/", views.command, name="command"),
    path("<int:pk>/photos/<int:attachment_id>/", views.photo, name="photo"),
]
