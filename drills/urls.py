from django.urls import path

from drills import views

app_name = "drills"

urlpatterns = [
    path("", views.drill_list, name="list"),
    path("plan/", views.drill_plan, name="plan"),
    path("training/", views.training, name="training"),
    path("actions/", views.actions, name="actions"),
    path("<uuid:uid>/", views.drill_detail, name="detail"),
    path("<uuid:uid>/start/", views.drill_start, name="start"),
    path("<uuid:uid>/abort/", views.drill_abort, name="abort"),
    path("<uuid:uid>/finish/", views.drill_finish, name="finish"),
    path("<uuid:uid>/review/", views.drill_review, name="review"),
    path("<uuid:uid>/actions/", views.drill_action_add, name="action-add"),
    path("<uuid:uid>/report.pdf", views.drill_pdf, name="pdf"),
    path("actions/<int:pk>/done/", views.drill_action_done, name="action-done"),
]
