from rest_framework.routers import SimpleRouter

from parts.api import views

router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("parts/parts", views.PartViewSet, basename="parts-part")
router.register("parts/depots", views.DepotViewSet, basename="parts-depot")
router.register("parts/stock", views.StockViewSet, basename="parts-stock")
router.register("parts/lots", views.LotViewSet, basename="parts-lot")
router.register("parts/movements", views.MovementViewSet, basename="parts-movement")
router.register("parts/counts", views.CountViewSet, basename="parts-count")
router.register("parts/alerts", views.AlertViewSet, basename="parts-alert")

urlpatterns = router.urls
