from django.urls import path

from inspections import phone, views

app_name = "inspections"

urlpatterns = [
    path("", views.inspection_list, name="list"),
    path("compliance/", views.compliance, name="compliance"),
    path("laggards/", views.laggards, name="laggards"),
    path("plan/", views.plan, name="plan"),
    path("<uuid:uid>/", views.inspection_detail, name="detail"),
    # The technician's phone pages.
    path("m/", phone.my_inspections, name="phone-list"),
    path("m/sw.js", phone.service_worker, name="phone-sw"),
    path("m/<uuid:uid>/", phone.inspection_page, name="phone-detail"),
]
