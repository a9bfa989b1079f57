from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.figures, name="figures"),
    path("export.<str:fmt>", views.export, name="export"),
    path("kiosks/<str:serial>/", views.kiosk, name="kiosk"),
    path("reviews/", views.reviews, name="reviews"),
    path("reviews/open/", views.review_open, name="review-open"),
    path("reviews/<str:code>/", views.review_detail, name="review"),
    path("reviews/<str:code>/summary/", views.review_summary, name="review-summary"),
    path("reviews/<str:code>/actions/", views.review_action_add, name="review-action-add"),
    path("reviews/<str:code>/publish/", views.review_publish, name="review-publish"),
    path("reviews/<str:code>/pdf/", views.review_pdf, name="review-pdf"),
    path("actions/<int:pk>/done/", views.review_action_done, name="action-done"),
]
