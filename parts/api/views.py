"""Staff API of spare parts: the catalog, depots, stock lot by lot, lots, the movement ledger with an explicit POST
action for each kind of movement (receive, issue, return, transfer, adjust or scrap), stock counts (start, record,
post) and the stock alerts.

Every read is scoped to the caller's regions (parts.selectors.depots_for_user): another region's depot, count or
movement is a 404, or not listed. Every change goes through parts.services, which checks the permission again: a
ValidationError naming a field is a 400, a PermissionDenied a 403, and a count that is closed or whose stock moved
meanwhile a 409 that changes nothing."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.permissions import has_perm
from core.validation import raise_as_drf
from parts import selectors, services
from parts.api import filters
from parts.api import serializers as s
from parts.models import Balance, Lot, Movement, Part, ReorderLevel, StockCountLine

VIEW = "parts.view_balance"
CONFLICT_CODES = ("illegal_transition", "conflict")
CONFLICT = OpenApiResponse(description="The count is closed, or stock moved in the depot meanwhile.")


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def call_service(call):
    """Run a service: a refusal of the count as it stands is a 409, a field's error a 400 naming the field, a
    PermissionDenied a 403."""
    try:
        return call()
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict"):
            codes = {e.code for e in error.error_list}
            if codes & set(CONFLICT_CODES):
                raise Conflict(" ".join(error.messages), code=next(c for c in CONFLICT_CODES if c in codes)) from error
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


def _depot(user, code: str, field: str = "depot"):
    depot = selectors.depots_for_user(user).filter(code=code).first()
    if depot is None:
        raise ValidationError({field: [_("No such depot in your regions.")]})
    return depot


def _part(number: str):
    part = Part.objects.filter(part_number=number, active=True).first()
    if part is None:
        raise ValidationError({"part": [_("No such part in the catalog.")]})
    return part


def _lot(pk: int):
    lot = Lot.objects.filter(pk=pk).select_related("part").first()
    if lot is None:
        raise ValidationError({"lot": [_("No such lot.")]})
    return lot


def _movements(queryset):
    return queryset.select_related("lot__part", "source", "target", "actor")


class PartViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalog of spare parts (备件目录), by part number."""

    queryset = Part.objects.order_by("part_number")
    serializer_class = s.PartOut
    lookup_field = "part_number"
    lookup_value_converter = "str"
    filterset_class = filters.PartFilter
    permission_classes = [IsAuthenticated, has_perm(VIEW)]


class DepotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Depots of the caller's regions: regional stores and technicians' vans, by code."""

    serializer_class = s.DepotOut
    lookup_field = "code"
    lookup_value_converter = "slug"
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        levels = Prefetch(
            "reorder_levels", queryset=ReorderLevel.objects.select_related("part").order_by("part__part_number")
        )
        return (
            selectors.depots_for_user(self.request.user)
            .select_related("count_schedule")
            .prefetch_related(levels)
            .order_by("region__code", "kind", "code")
        )

    def _answer(self, depot) -> Response:
        return Response(s.DepotOut(self.get_queryset().get(pk=depot.pk)).data)

    @extend_schema(request=s.ScheduleIn, responses={200: s.DepotOut})
    @action(detail=True, methods=["post"])
    def schedule(self, request, code=None):
        """Set when the depot is next counted and how often (whoever may move its stock)."""
        payload = s.ScheduleIn(data=request.data)
        payload.is_valid(raise_exception=True)
        depot = self.get_object()
        d = payload.validated_data
        call_service(
            lambda: services.count_schedule_set(
                depot=depot, every_days=d["every_days"], due_on=d["due_on"], actor=request.user
            )
        )
        return self._answer(depot)

    @extend_schema(request=s.ReorderLevelIn, responses={200: s.DepotOut})
    @action(detail=True, methods=["post"], url_path="reorder-level")
    def reorder_level(self, request, code=None):
        """Give the depot its own reorder point and quantity for a part (technical support)."""
        payload = s.ReorderLevelIn(data=request.data)
        payload.is_valid(raise_exception=True)
        depot = self.get_object()
        d = payload.validated_data
        part = _part(d["part"])
        call_service(
            lambda: services.reorder_level_set(
                depot=depot,
                part=part,
                reorder_point=d["reorder_point"],
                reorder_quantity=d["reorder_quantity"],
                actor=request.user,
            )
        )
        return self._answer(depot)


class StockViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Stock on hand lot by lot in the caller's depots (nothing at zero), first-expiring first."""

    serializer_class = s.StockOut
    filterset_class = filters.StockFilter
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        return (
            Balance.objects.filter(depot__in=selectors.depots_for_user(self.request.user), quantity__gt=0)
            .select_related("depot", "lot__part")
            .order_by("depot__code", "lot__part__part_number", "lot__expires_on", "lot_id")
        )


class LotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Lots held (now or before) in the caller's depots, with their expiry."""

    serializer_class = s.LotOut
    filterset_class = filters.LotFilter
    lookup_value_converter = "int"
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        depots = selectors.depots_for_user(self.request.user)
        return (
            Lot.objects.filter(Q(balances__depot__in=depots))
            .distinct()
            .select_related("part")
            .order_by("part__part_number", "expires_on", "id")
        )


@extend_schema_view(list=extend_schema(description="The movement ledger of the caller's depots, newest first."))
class MovementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The stock ledger (出入库流水): append-only; each POST action writes movements through the services, and the
    database refuses any that would take a lot below zero."""

    serializer_class = s.MovementOut
    filterset_class = filters.MovementFilter
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        return _movements(selectors.movements_for_user(self.request.user))

    def _answer(self, movements) -> Response:
        movements = movements if isinstance(movements, list) else [movements]
        fresh = _movements(Movement.objects.filter(pk__in=[m.pk for m in movements])).order_by("id")
        return Response(s.MovementOut(fresh, many=True).data, status=status.HTTP_201_CREATED)

    def _input(self, serializer_class):
        payload = serializer_class(data=self.request.data)
        payload.is_valid(raise_exception=True)
        return payload.validated_data

    @extend_schema(request=s.ReceiveIn, responses={201: s.MovementOut(many=True)})
    @action(detail=False, methods=["post"])
    def receive(self, request):
        """Stock arrives at a depot (入库) as a lot; a part that expires needs the lot's expiry date."""
        d = self._input(s.ReceiveIn)
        part, depot = _part(d["part"]), _depot(request.user, d["depot"])
        return self._answer(
            call_service(
                lambda: services.part_receive(
                    part=part,
                    depot=depot,
                    quantity=d["quantity"],
                    lot_number=d["lot_number"],
                    expires_on=d["expires_on"],
                    actor=request.user,
                    reason=d["reason"],
                )
            )
        )

    @extend_schema(request=s.IssueIn, responses={201: s.MovementOut(many=True)})
    @action(detail=False, methods=["post"])
    def issue(self, request):
        """Take parts out for a work order (领用), first-expiring lot first (FEFO); expired lots are never issued.
        One movement per lot drawn from."""
        d = self._input(s.IssueIn)
        part, depot = _part(d["part"]), _depot(request.user, d["depot"])
        return self._answer(
            call_service(
                lambda: services.stock_issue(
                    part=part, depot=depot, quantity=d["quantity"], actor=request.user, reference=d["reference"]
                )
            )
        )

    @extend_schema(request=s.ReturnIn, responses={201: s.MovementOut(many=True)}, operation_id="parts_movements_return")
    @action(detail=False, methods=["post"], url_path="return")
    def return_(self, request):
        """Unused parts back into a depot (退回)."""
        d = self._input(s.ReturnIn)
        lot, depot = _lot(d["lot"]), _depot(request.user, d["depot"])
        return self._answer(
            call_service(
                lambda: services.stock_return(
                    lot=lot,
                    depot=depot,
                    quantity=d["quantity"],
                    actor=request.user,
                    reference=d["reference"],
                    reason=d["reason"],
                )
            )
        )

    @extend_schema(request=s.TransferIn, responses={201: s.MovementOut(many=True)})
    @action(detail=False, methods=["post"])
    def transfer(self, request):
        """From one depot to another (调拨); the source's keeper moves it."""
        d = self._input(s.TransferIn)
        lot = _lot(d["lot"])
        source, target = _depot(request.user, d["source"], "source"), _depot(request.user, d["target"], "target")
        return self._answer(
            call_service(
                lambda: services.stock_transfer(
                    lot=lot,
                    source=source,
                    target=target,
                    quantity=d["quantity"],
                    actor=request.user,
                    reason=d["reason"],
                )
            )
        )

    @extend_schema(request=s.AdjustIn, responses={201: s.MovementOut(many=True)})
    @action(detail=False, methods=["post"])
    def adjust(self, request):
        """Correct a lot's stock up or down with a reason (调整), or scrap it (报废, down only)."""
        d = self._input(s.AdjustIn)
        lot, depot = _lot(d["lot"]), _depot(request.user, d["depot"])
        return self._answer(
            call_service(
                lambda: services.stock_adjust(
                    lot=lot, depot=depot, delta=d["delta"], actor=request.user, reason=d["reason"], kind=d["kind"]
                )
            )
        )


class CountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stock counts (盘点) of the caller's depots: start one, record what was found lot by lot, post the
    variances as count movements naming the counter."""

    serializer_class = s.CountOut
    lookup_value_converter = "int"
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        lines = StockCountLine.objects.select_related("lot__part", "counted_by").order_by(
            "lot__part__part_number", "lot_id"
        )
        return (
            selectors.counts_for_user(self.request.user)
            .prefetch_related(Prefetch("lines", queryset=lines))
            .order_by("-started_at", "-id")
        )

    def _answer(self, count, code=status.HTTP_200_OK) -> Response:
        return Response(s.CountOut(self.get_queryset().get(pk=count.pk)).data, status=code)

    @extend_schema(request=s.CountStartIn, responses={201: s.CountOut, 409: CONFLICT})
    def create(self, request):
        """Start a count of a depot: each lot it holds with what the ledger expects. One open count per depot."""
        payload = s.CountStartIn(data=request.data)
        payload.is_valid(raise_exception=True)
        depot = _depot(request.user, payload.validated_data["depot"])
        count = call_service(lambda: services.stock_count_start(depot=depot, actor=request.user))
        return self._answer(count, status.HTTP_201_CREATED)

    @extend_schema(request=s.CountRecordIn, responses={200: s.CountOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def record(self, request, pk=None):
        """What was found of a lot (0 to 100,000), under the caller's name."""
        payload = s.CountRecordIn(data=request.data)
        payload.is_valid(raise_exception=True)
        count = self.get_object()
        lot = _lot(payload.validated_data["lot"])
        call_service(
            lambda: services.stock_count_record(
                count=count, lot=lot, counted=payload.validated_data["counted"], actor=request.user
            )
        )
        return self._answer(count)

    @extend_schema(request=None, responses={200: s.CountOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def post(self, request, pk=None):
        """Post the count: each difference becomes a count-variance movement. Refused (409) when stock moved in
        the depot meanwhile; a 400 while a lot is uncounted."""
        count = self.get_object()
        call_service(lambda: services.stock_count_post(count=count, actor=request.user))
        return self._answer(count)


class AlertViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Stock alerts of the caller's depots (below reorder point, expiring, expired), newest first."""

    serializer_class = s.AlertOut
    filterset_class = filters.AlertFilter
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    def get_queryset(self):
        return selectors.alerts_for_user(self.request.user, open_only=False).order_by("-raised_at", "-id")
