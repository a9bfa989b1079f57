from rest_framework.routers import SimpleRouter

from fleet.api.views import KioskViewSet

router = SimpleRouter(trailing_slash=True)
router.register("kiosks", KioskViewSet, basename="kiosk")
urlpatterns = router.urls
