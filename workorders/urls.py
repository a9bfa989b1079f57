from django.urls import include, path

from workorders import views

app_name = "workorders"
urlpatterns = [
    path("", views.order_list, name="list"),
    path("live/", views.order_list_live, name="list-live"),
    path("dispatch/<int:incident_pk>/", views.dispatch, name="dispatch"),
    path("<uuid:uid>/", views.detail, name="detail"),
    path("<uuid:uid>/live/", views.detail_live, name="detail-live"),
    path("<uuid:uid>/assign/", views.assign, name="assign"),
    path("<uuid:uid>/cancel/", views.cancel, name="cancel"),
    path("<uuid:uid>/close/", views.close, name="close"),
    path("<uuid:uid>/note/", views.note, name="note"),
    path("<uuid:uid>/self-test/", views.self_test, name="self-test"),
    path("<uuid:uid>/photos/<int:photo_id>/", views.photo, name="photo"),
    path("<uuid:uid>/signature/", views.signature, name="signature"),
    path("m/", include("workorders.phone_urls")),  # the field technician's phone pages (workorders/phone.py)
]
