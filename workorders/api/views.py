"""Staff API of work orders: the list and one order, dispatch (from an incident, or naming it), and every step of
the order as an explicit POST action — the dispatcher's (assign, close, cancel), the technician's (accept to
sign-off) and support's notes.

Every read is scoped to the caller's regions (workorders.selectors): another region's order is a 404. Every change
goes through workorders.services, which checks the permission and the status again: a ValidationError naming a
field is a 400, a PermissionDenied a 403, and a step the order's status does not allow (or that someone else's
change meanwhile made stale) a 409 that changes nothing."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import has_perm
from core.validation import raise_as_drf
from incidents import selectors as incident_selectors
from workorders import selectors, services
from workorders.api import serializers as s
from workorders.api.filters import WorkOrderFilter
from workorders.models import Photo, SelfTest, WorkOrder, WorkOrderEvent

VIEW = "workorders.view_workorder"
CONFLICT_CODES = ("illegal_transition", "conflict")

CONFLICT = OpenApiResponse(description="The order's status does not allow this now (or it changed meanwhile).")


class Conflict(APIException):
    """409: the order's status does not allow the step (someone acted first, or it is finished)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "illegal_transition"


def call_service(call):
    """Run a service: a refusal of the order as it stands is a 409, a field's error a 400 naming the field, a
    PermissionDenied a 403."""
    try:
        return call()
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict"):
            codes = {e.code for e in error.error_list}
            if codes & set(CONFLICT_CODES):
                code = next(code for code in CONFLICT_CODES if code in codes)
                raise Conflict(" ".join(error.messages), code=code) from error
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


def _technician(username: str | None):
    """The user named, or None for an empty name; a 400 on `assignee` when nobody active has that name."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"assignee": [_("No such person.")]})
    return user


def _detail_queryset(orders):
    return orders.select_related(
        "incident", "kiosk", "site", "region", "assignee", "assigned_by", "test_override_by"
    ).prefetch_related(
        "checklist__done_by",
        "parts__recorded_by",
        Prefetch("photos", queryset=Photo.objects.select_related("taken_by", "order")),
        "tests__confirmed_by",
        Prefetch("self_tests", queryset=SelfTest.objects.select_related("requested_by").order_by("-requested_at")),
        Prefetch("events", queryset=WorkOrderEvent.objects.select_related("actor").order_by("at", "id")),
    )


def order_response(order: WorkOrder, code: int = status.HTTP_200_OK) -> Response:
    fresh = _detail_queryset(WorkOrder.objects.all()).get(pk=order.pk)
    return Response(s.WorkOrderDetailOut(fresh).data, status=code)


@extend_schema_view(
    list=extend_schema(description="Work orders of the caller's regions: overdue first, then by arrival time."),
    retrieve=extend_schema(
        description="One order with its checklist, parts, photos, functional tests, self-tests and event log."
    ),
)
class WorkOrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Onsite work orders (工单). Every step is an explicit POST action, written to the order's event log and the
    incident's timeline."""

    lookup_field = "uid"
    lookup_url_kwarg = "uid"
    lookup_value_converter = "uuid"
    filterset_class = WorkOrderFilter
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        orders = selectors.orders_visible(self.request.user)
        if self.action == "list":
            return orders.select_related("incident", "kiosk", "site", "region", "assignee")
        if self.action == "retrieve":
            return _detail_queryset(orders)
        # An action: the service locks and reads the order itself; the answer is read afresh (order_response).
        return orders

    def get_serializer_class(self):
        return s.WorkOrderOut if self.action == "list" else s.WorkOrderDetailOut

    @extend_schema(request=s.WorkOrderCreateIn, responses={201: s.WorkOrderDetailOut, 409: CONFLICT})
    def create(self, request):
        """Dispatch a work order for an incident (operations managers), optionally straight to a technician."""
        data = s.WorkOrderCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        incident = incident_selectors.incidents_for_user(request.user).filter(pk=data.validated_data["incident"])
        incident = incident.select_related("site", "kiosk").first()
        if incident is None:
            raise ValidationError({"incident": [_("No such incident in your regions.")]})
        assignee = _technician(data.validated_data["assignee"])
        order = call_service(
            lambda: services.work_order_create(incident=incident, actor=request.user, assignee=assignee)
        )
        return order_response(order, status.HTTP_201_CREATED)

    def _act(self, request, input_class, call) -> Response:
        data = {}
        if input_class is not None:
            payload = input_class(data=request.data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        order = self.get_object()
        call_service(lambda: call(order, data))
        return order_response(order)

    # --- Dispatch -----------------------------------------------------------------------------------------------

    @extend_schema(request=s.WorkOrderAssignIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def assign(self, request, uid=None):
        """Give the order to a technician (dispatch or reassign); the suggestion list and who chose are kept."""
        return self._act(
            request,
            s.WorkOrderAssignIn,
            lambda o, d: services.work_order_assign(
                order=o, actor=request.user, assignee=_technician(d["assignee"]) or _no_assignee()
            ),
        )

    @extend_schema(request=s.WorkOrderCloseIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def close(self, request, uid=None):
        """Close the order: signed off, or (dispatchers) with the reason it closes without a passed test."""
        return self._act(
            request,
            s.WorkOrderCloseIn,
            lambda o, d: services.work_order_close(order=o, actor=request.user, override_reason=d["override_reason"]),
        )

    @extend_schema(request=s.WorkOrderReasonIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, uid=None):
        """Cancel the order (dispatchers), with the reason; a kiosk the order held in maintenance is released."""
        return self._act(
            request,
            s.WorkOrderReasonIn,
            lambda o, d: services.work_order_cancel(order=o, actor=request.user, reason=d["reason"]),
        )

    # --- The technician's steps ---------------------------------------------------------------------------------

    @extend_schema(request=None, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def accept(self, request, uid=None):
        """The technician takes the order."""
        return self._act(request, None, lambda o, d: services.work_order_accept(order=o, actor=request.user))

    @extend_schema(request=s.WorkOrderReasonIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def refuse(self, request, uid=None):
        """The technician cannot take it, with the reason: back to dispatch."""
        return self._act(
            request,
            s.WorkOrderReasonIn,
            lambda o, d: services.work_order_refuse(order=o, actor=request.user, reason=d["reason"]),
        )

    @extend_schema(request=None, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def depart(self, request, uid=None):
        """On the way to the hall."""
        return self._act(request, None, lambda o, d: services.work_order_depart(order=o, actor=request.user))

    @extend_schema(request=s.WorkOrderCheckInIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request, uid=None):
        """At the kiosk (scanning its sticker, or by hand): the kiosk goes into maintenance."""
        return self._act(
            request,
            s.WorkOrderCheckInIn,
            lambda o, d: services.work_order_check_in(order=o, actor=request.user, scanned=d["scanned"]),
        )

    @extend_schema(request=None, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="check-out")
    def check_out(self, request, uid=None):
        """Leaving the kiosk: the maintenance the order started ends."""
        return self._act(request, None, lambda o, d: services.work_order_check_out(order=o, actor=request.user))

    @extend_schema(request=s.WorkOrderChecklistIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def checklist(self, request, uid=None):
        """One checklist step's result: done, did not help, not applicable."""
        return self._act(
            request,
            s.WorkOrderChecklistIn,
            lambda o, d: services.work_order_checklist(
                order=o, actor=request.user, key=d["key"], outcome=d["outcome"], note=d["note"]
            ),
        )

    @extend_schema(request=s.WorkOrderNoteIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def note(self, request, uid=None):
        """A note on the order: the technician's, a dispatcher's, or technical support guiding the technician."""
        return self._act(
            request,
            s.WorkOrderNoteIn,
            lambda o, d: services.work_order_note(order=o, actor=request.user, text=d["text"]),
        )

    @extend_schema(request=s.WorkOrderPartIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def part(self, request, uid=None):
        """A part fitted (part number, name, quantity)."""
        return self._act(
            request,
            s.WorkOrderPartIn,
            lambda o, d: services.work_order_add_part(
                order=o,
                actor=request.user,
                part_number=d["part_number"],
                name=d["name"],
                quantity=d["quantity"],
                note=d["note"],
                removed=d.get("removed", ""),
            ),
        )

    @extend_schema(request=s.WorkOrderDoneIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def done(self, request, uid=None):
        """The repair is done, with what was done: the functional test follows."""
        return self._act(
            request,
            s.WorkOrderDoneIn,
            lambda o, d: services.work_order_done(order=o, actor=request.user, summary=d["summary"]),
        )

    @extend_schema(request=s.WorkOrderTestIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def test(self, request, uid=None):
        """One functional-test check, passed or failed; every required check and the self-test passed verify the
        repair."""
        return self._act(
            request,
            s.WorkOrderTestIn,
            lambda o, d: services.work_order_test(
                order=o, actor=request.user, check=d["check"], result=d["result"], note=d["note"]
            ),
        )

    @extend_schema(request=None, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="self-test")
    def self_test(self, request, uid=None):
        """Ask the kiosk to run its self-test (it goes out with the next heartbeat)."""
        return self._act(request, None, lambda o, d: services.work_order_request_self_test(order=o, actor=request.user))

    @extend_schema(request=s.WorkOrderSignOffIn, responses={200: s.WorkOrderDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="sign-off")
    def sign_off(self, request, uid=None):
        """The hall's staff on duty confirm the kiosk works: their name and signature (a PNG data URL)."""
        return self._act(
            request,
            s.WorkOrderSignOffIn,
            lambda o, d: services.work_order_sign_off(
                order=o, actor=request.user, name=d["name"], signature=d["signature"]
            ),
        )


def _no_assignee():
    raise ValidationError({"assignee": [_("Choose the technician.")]})


class IncidentWorkOrderView(APIView):
    """POST /api/v1/incidents/<id>/workorder/ — dispatch a work order for the incident."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(
        operation_id="v1_incidents_workorder_create",
        request=s.IncidentWorkOrderIn,
        responses={201: s.WorkOrderDetailOut, 409: CONFLICT},
        description="Dispatch a work order for the incident (operations managers), optionally straight to a "
        "technician. 409 when the incident already has an active order or is no longer being worked.",
    )
    def post(self, request, incident_id: int):
        data = s.IncidentWorkOrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        incident = get_object_or_404(
            incident_selectors.incidents_for_user(request.user).select_related("site", "kiosk"), pk=incident_id
        )
        assignee = _technician(data.validated_data["assignee"])
        order = call_service(
            lambda: services.work_order_create(incident=incident, actor=request.user, assignee=assignee)
        )
        return order_response(order, status.HTTP_201_CREATED)
