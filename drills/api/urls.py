from django.urls import path

from drills.api import views

urlpatterns = [
    path("drills/", views.DrillListView.as_view(), name="drills"),
    path("drills/<uuid:uid>/", views.DrillDetailView.as_view(), name="drill"),
    path("drills/<uuid:uid>/<str:action>/", views.DrillActionView.as_view(), name="drill-action"),
    path("drill-actions/", views.ActionListView.as_view(), name="drill-actions"),
    path("training-records/", views.TrainingListView.as_view(), name="training-records"),
]
