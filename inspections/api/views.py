"""Staff API of inspections: the list and one inspection (region-scoped: another region's is a 404), the
technician's actions (record a check, done), the templates and schedules, the compliance figures and the software
laggards. Changes go through inspections.services: a field's error is a 400, a refusal of the inspection as it
stands (done already, its period over) a 409, someone else's inspection a 403."""

from datetime import date

import django_filters
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import has_perm
from core.validation import raise_as_drf
from inspections import selectors, services
from inspections.api import serializers as s
from inspections.models import Inspection, InspectionTemplate, Schedule, Status

VIEW = "inspections.view_inspection"
COMPLIANCE = "inspections.view_compliance"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def call_service(call):
    try:
        return call()
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict") and any(e.code == "conflict" for e in error.error_list):
            raise Conflict(" ".join(error.messages)) from error
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


def _month(value: str) -> tuple[date, date] | None:
    try:
        year, month = (int(part) for part in value.split("-"))
        start = date(year, month, 1)
    except (TypeError, ValueError):
        return None
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


class InspectionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    region = django_filters.CharFilter(field_name="region__code", help_text="Region code.")
    hall = django_filters.CharFilter(field_name="site__code", help_text="Hall (site) code.")
    kiosk = django_filters.CharFilter(field_name="kiosk__serial", help_text="Kiosk serial number.")
    template = django_filters.CharFilter(field_name="template__code", help_text="daily, weekly, monthly …")
    period = django_filters.CharFilter(method="filter_period", help_text="A month, YYYY-MM: periods starting in it.")
    technician = django_filters.CharFilter(field_name="assignee__username", help_text="A username.")

    class Meta:
        model = Inspection
        fields = []

    def filter_period(self, queryset, name, value):
        span = _month(value)
        if span is None:
            raise ValidationError({"period": ["YYYY-MM"]})
        return queryset.filter(period_start__gte=span[0], period_start__lt=span[1])


class InspectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """GET /api/v1/inspections/ and /api/v1/inspections/<uid>/; POST …/check/ and …/done/ (the technician's)."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]
    lookup_field = "uid"
    lookup_url_kwarg = "uid"
    lookup_value_converter = "uuid"
    filterset_class = InspectionFilter

    def get_queryset(self):
        queryset = selectors.inspections_visible(self.request.user).order_by("-period_start", "due_at", "pk")
        if self.action != "list":
            queryset = queryset.prefetch_related("results__recorded_by", "template__checks")
        return queryset

    def get_serializer_class(self):
        return s.InspectionOut if self.action == "list" else s.InspectionDetailOut

    @extend_schema(
        request=s.CheckIn,
        responses={200: s.InspectionDetailOut, 409: OpenApiResponse(description="Done already, or its period ended.")},
        description="Record a phone check's result (pass or fail; a failure needs a note and opens an incident).",
    )
    @action(detail=True, methods=["post"])
    def check(self, request, uid=None):
        inspection = self.get_object()
        payload = s.CheckIn(data=request.data)
        payload.is_valid(raise_exception=True)
        call_service(
            lambda: services.inspection_record_check(
                inspection=inspection, actor=request.user, **payload.validated_data
            )
        )
        return Response(s.InspectionDetailOut(self.get_object()).data)

    @extend_schema(
        request=s.DoneIn,
        responses={200: s.InspectionDetailOut, 409: OpenApiResponse(description="Done already, or its period ended.")},
        description="Complete the inspection: every phone check must have its result.",
    )
    @action(detail=True, methods=["post"])
    def done(self, request, uid=None):
        inspection = self.get_object()
        payload = s.DoneIn(data=request.data)
        payload.is_valid(raise_exception=True)
        call_service(
            lambda: services.inspection_complete(inspection=inspection, actor=request.user, **payload.validated_data)
        )
        return Response(s.InspectionDetailOut(self.get_object()).data)


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    """GET /api/v1/inspection-templates/ — what each inspection checks (edited in the admin by technical support)."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]
    serializer_class = s.TemplateOut
    lookup_field = "code"
    queryset = InspectionTemplate.objects.prefetch_related("checks").order_by("code")
    filter_backends = []


class ScheduleViewSet(viewsets.ReadOnlyModelViewSet):
    """GET /api/v1/inspection-schedules/ — which kiosks each template applies to (the caller's regions' and the
    fleet-wide ones)."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]
    serializer_class = s.ScheduleOut
    filter_backends = []

    def get_queryset(self):
        from django.db.models import Q

        from accounts.scoping import visible_region_ids

        queryset = Schedule.objects.select_related("template", "region", "site", "kiosk").order_by(
            "template__code", "pk"
        )
        region_ids = visible_region_ids(self.request.user)
        if region_ids is None:
            return queryset
        return queryset.filter(
            Q(scope__in=("all", "model"))
            | Q(region_id__in=region_ids)
            | Q(site__region_id__in=region_ids)
            | Q(kiosk__site__region_id__in=region_ids)
        )


class ComplianceView(APIView):
    """GET /api/v1/inspections/compliance/?by=site|region|technician&from=YYYY-MM&to=YYYY-MM"""

    permission_classes = [IsAuthenticated, has_perm(COMPLIANCE)]

    @extend_schema(
        operation_id="inspections_compliance",
        parameters=[
            OpenApiParameter(
                "by",
                str,
                enum=["site", "region", "technician"],
                description="Rows per hall (default), region or technician.",
            ),
            OpenApiParameter("from", str, description="First month, YYYY-MM (default: five months ago)."),
            OpenApiParameter("to", str, description="Last month, YYYY-MM (default: this month)."),
        ],
        responses={200: s.ComplianceOut},
        description="Done on time, done late and missed inspections per month, of the caller's regions.",
    )
    def get(self, request):
        by, start, end = compliance_params(request.query_params)
        data = selectors.compliance(request.user, by=by, start=start, end=end)
        return Response(s.ComplianceOut({"by": by, **data}).data)


def compliance_params(params) -> tuple[str, date, date]:
    by = params.get("by") or "site"
    if by not in ("site", "region", "technician"):
        raise ValidationError({"by": ["site, region, technician"]})
    today = timezone.localdate()
    default_from = date(today.year - (today.month <= 5), (today.month - 6) % 12 + 1, 1)
    first = _month(params["from"]) if params.get("from") else (default_from, None)
    last = _month(params["to"]) if params.get("to") else _month(f"{today.year}-{today.month}")
    if first is None:
        raise ValidationError({"from": ["YYYY-MM"]})
    if last is None:
        raise ValidationError({"to": ["YYYY-MM"]})
    return by, first[0], last[1]


class LaggardsView(APIView):
    """GET /api/v1/inspections/laggards/ — kiosks running a version behind the one approved for their model."""

    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(operation_id="inspections_laggards", responses={200: s.LaggardOut(many=True)})
    def get(self, request):
        return Response(s.LaggardOut(selectors.laggards(request.user), many=True).data)
