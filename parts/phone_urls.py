from django.urls import path

from parts import phone

urlpatterns = [
    path("", phone.depots, name="phone"),
    path("counts/<int:pk>/", phone.count, name="phone-count"),
]
