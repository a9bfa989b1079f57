from rest_framework.routers import SimpleRouter

from incidents.api import views

# Path converters: an incident id that is not a number is a 404 before any query runs.
router = SimpleRouter(trailing_slash=True, use_regex_path=False)
# The configuration first: "playbooks" must not be read as an incident's id (it is not one: ids are numbers).
router.register("incidents/playbooks", views.PlaybookViewSet, basename="incident-playbook")
router.register("incidents/sla-policies", views.SlaPolicyViewSet, basename="incident-sla-policy")
router.register("incidents/escalation-chains", views.EscalationChainViewSet, basename="incident-escalation-chain")
router.register("incidents", views.IncidentViewSet, basename="incident")
urlpatterns = router.urls
