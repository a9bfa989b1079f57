from django.urls import path

from fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.board, name="board"),
    path("board/tiles/", views.board_tiles, name="board-tiles"),
    path("provision/", views.kiosk_provision, name="kiosk-provision"),
    path("heartbeats/set-aside/", views.dead_letters, name="dead-letters"),
    path("kiosks/<str:serial>/", views.kiosk_detail, name="kiosk"),
    path("kiosks/<str:serial>/live/", views.kiosk_live, name="kiosk-live"),
    path("kiosks/<str:serial>/commands/", views.command_issue, name="command-issue"),
    path("kiosks/<str:serial>/commands/<uuid:command_id>/cancel/", views.command_cancel, name="command-cancel"),
    path("kiosks/<str:serial>/maintenance/", views.maintenance_start, name="maintenance-start"),
    path("kiosks/<str:serial>/maintenance/end/", views.maintenance_end, name="maintenance-end"),
    path("kiosks/<str:serial>/token/rotate/", views.token_rotate, name="token-rotate"),
    path("kiosks/<str:serial>/token/revoke/", views.token_revoke, name="token-revoke"),
]
