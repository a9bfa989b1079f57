from django.urls import path

from analytics.api import views

urlpatterns = [
    path("analytics/figures/", views.FiguresView.as_view(), name="analytics-figures"),
    path("analytics/reviews/", views.ReviewListView.as_view(), name="analytics-reviews"),
    path("analytics/reviews/<str:code>/", views.ReviewDetailView.as_view(), name="analytics-review"),
    path(
        "analytics/reviews/<str:code>/actions/", views.ReviewActionCreateView.as_view(), name="analytics-review-actions"
    ),
    path("analytics/actions/<int:pk>/done/", views.ActionDoneView.as_view(), name="analytics-action-done"),
]
