from django.urls import include, path

from parts import views

app_name = "parts"
urlpatterns = [
    path("", views.stock, name="stock"),
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/new/", views.part_edit, name="part-new"),
    path("catalog/<str:part_number>/", views.part_detail, name="part"),
    path("catalog/<str:part_number>/edit/", views.part_edit, name="part-edit"),
    path("ledger/", views.ledger, name="ledger"),
    path("alerts/", views.alerts, name="alerts"),
    path("depots/<slug:code>/", views.depot_detail, name="depot"),
    path("depots/<slug:code>/count/", views.count_start, name="count-start"),
    path("depots/<slug:code>/<slug:action>/", views.depot_action, name="depot-action"),
    path("counts/<int:pk>/", views.count_detail, name="count"),
    path("import/", views.import_page, name="import"),
    path("export/<slug:what>.<slug:fmt>", views.export, name="export"),
    path("m/", include("parts.phone_urls")),  # the technician's stock count on the phone (parts/phone.py)
]
