"""Staff API of reconciliation: the exception queue and its actions, runs, imports, reports, the lookup."""

from datetime import date

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import scope_kiosks
from core import inputs
from core.form_parsers import PolicyFormParser, PolicyMultiPartParser
from core.permissions import has_perm
from core.validation import raise_as_drf
from fleet.models import Kiosk
from reconciliation import exports, lookup, selectors, services, tasks
from reconciliation.api import serializers as s
from reconciliation.ledger_formats import LedgerFormatError
from reconciliation.models import BENIGN_OUTCOMES, Channel, LedgerEntry, Outcome, ReconItem
from reconciliation.selectors import kiosk_scope_for, scoped_items


class ItemFilter(django_filters.FilterSet):
    date = django_filters.DateFilter(field_name="business_date")
    date_from = django_filters.DateFilter(field_name="business_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="business_date", lookup_expr="lte")
    outcome = django_filters.MultipleChoiceFilter(choices=Outcome.choices)
    state = django_filters.MultipleChoiceFilter(choices=ReconItem.State.choices)
    severity = django_filters.MultipleChoiceFilter(choices=ReconItem.Severity.choices)
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    kiosk = django_filters.CharFilter(field_name="kiosk__serial")
    site = django_filters.CharFilter(field_name="kiosk__site__code")
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte")
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte")
    assigned_to = django_filters.CharFilter(field_name="assigned_to__username")
    problems_only = django_filters.BooleanFilter(
        method="filter_problems",
        label="exclude matched and the waiting outcomes (pending settlement, awaiting the journal)",
    )
    awaiting_my_approval = django_filters.BooleanFilter(
        method="filter_awaiting", label="only items whose write-off awaits the caller's approval"
    )

    class Meta:
        model = ReconItem
        fields = []

    def filter_problems(self, queryset, name, value):
        return queryset.exclude(outcome__in=BENIGN_OUTCOMES) if value else queryset

    def filter_awaiting(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(pk__in=selectors.writeoffs_awaiting(self.request.user).values("item_id"))


class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The exception queue. Actions are explicit POSTs; every one is written to the item's audit trail."""

    lookup_field = "uid"
    filterset_class = ItemFilter

    def get_permissions(self):
        perm = {
            "contact": "reconciliation.contact_citizen",
            "write_off_approve": "reconciliation.approve_writeoff",
            "write_off_reject": "reconciliation.approve_writeoff",
        }.get(self.action)
        if perm is None:
            perm = (
                "reconciliation.view_reconitem"
                if self.action in ("list", "retrieve")
                else ("reconciliation.resolve_reconitem")
            )
        return [IsAuthenticated(), has_perm(perm)()]

    def get_queryset(self):
        return scoped_items(self.request.user).order_by("-business_date", "-severity", "-amount", "id")

    def get_serializer_class(self):
        return s.ItemDetailOut if self.action == "retrieve" else s.ItemOut

    def _do(self, request, input_class, call, *, output=s.ItemDetailOut, done=status.HTTP_200_OK):
        data = input_class(data=request.data)
        data.is_valid(raise_exception=True)
        item = self.get_object()
        try:
            call(item, data.validated_data)
        except DjangoValidationError as exc:
            raise_as_drf(exc)
        except services.NotAllowed as exc:
            return Response({"code": "permission_denied", "detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except services.ResolutionError as exc:
            return Response({"code": "conflict", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        item = scoped_items(request.user).prefetch_related("actions__actor", "writeoff_requests").get(pk=item.pk)
        return Response(output(item).data, status=done)

    @extend_schema(request=s.AssignIn, responses=s.ItemDetailOut)
    @action(detail=True, methods=["post"])
    def assign(self, request, uid=None):
        def call(item, data):
            assignee = None
            if data["assignee"]:
                # As in the console: only someone who works items and sees this one's region.
                people = selectors.people_with_permission_for_item("reconciliation.resolve_reconitem", item)
                assignee = people.filter(username=data["assignee"]).first()
                if assignee is None:
                    raise DjangoValidationError(
                        {"assignee": "No such user who works reconciliation items in this item's region."}
                    )
            return services.item_assign(item=item, assignee=assignee, actor=request.user)

        return self._do(request, s.AssignIn, call)

    @extend_schema(request=s.ManualMatchIn, responses=s.ItemDetailOut)
    @action(detail=True, methods=["post"])
    def match(self, request, uid=None):
        def call(item, data):
            entry = LedgerEntry.objects.filter(channel=data["channel"], channel_ref=data["channel_ref"]).first()
            if entry is None:
                raise DjangoValidationError({"channel_ref": "No ledger entry with this channel and order number."})
            return services.item_manual_match(item=item, ledger_entry=entry, reason=data["reason"], actor=request.user)

        return self._do(request, s.ManualMatchIn, call)

    @extend_schema(request=s.NoteIn, responses=s.ItemDetailOut)
    @action(detail=True, methods=["post"], url_path="request-refund")
    def request_refund(self, request, uid=None):
        return self._do(
            request,
            s.NoteIn,
            lambda item, d: services.item_request_refund(item=item, note=d["note"], actor=request.user),
        )

    @extend_schema(request=s.RefundedIn, responses=s.ItemDetailOut)
    @action(detail=True, methods=["post"])
    def refunded(self, request, uid=None):
        return self._do(
            request,
            s.RefundedIn,
            lambda item, d: services.item_mark_refunded(item=item, reference=d["reference"], actor=request.user),
        )

    @extend_schema(
        request=s.WriteOffIn,
        responses={202: s.ItemDetailOut, 400: dict, 409: dict},
        description="Ask for the item to be written off. The item stays open, with the request awaiting approval "
        "(`writeoff`), until another person holding reconciliation.approve_writeoff approves or rejects it. "
        "An `approver` field is refused: nobody names their own approver.",
    )
    @action(detail=True, methods=["post"], url_path="write-off")
    def write_off(self, request, uid=None):
        return self._do(
            request,
            s.WriteOffIn,
            lambda item, d: services.item_write_off_request(item=item, reason=d["reason"], actor=request.user),
            done=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        request=s.DecisionIn,
        responses={200: s.ItemDetailOut, 403: dict, 409: dict},
        description="Approve the item's pending write-off: the item is resolved as written off. Needs "
        "reconciliation.approve_writeoff; the requester cannot approve their own request (403).",
    )
    @action(detail=True, methods=["post"], url_path="write-off/approve")
    def write_off_approve(self, request, uid=None):
        return self._do(
            request,
            s.DecisionIn,
            lambda item, d: services.item_write_off_approve(item=item, actor=request.user, note=d.get("note", "")),
        )

    @extend_schema(
        request=s.NoteIn,
        responses={200: s.ItemDetailOut, 403: dict, 409: dict},
        description="Reject the item's pending write-off, saying why; the item stays open. Needs "
        "reconciliation.approve_writeoff; the requester cannot reject their own request (403).",
    )
    @action(detail=True, methods=["post"], url_path="write-off/reject")
    def write_off_reject(self, request, uid=None):
        return self._do(
            request,
            s.NoteIn,
            lambda item, d: services.item_write_off_reject(item=item, actor=request.user, note=d["note"]),
        )

    @extend_schema(
        request=s.DecisionIn,
        responses={200: s.ItemDetailOut, 403: dict, 409: dict},
        description="Withdraw one's own pending write-off request; the item stays open.",
    )
    @action(detail=True, methods=["post"], url_path="write-off/withdraw")
    def write_off_withdraw(self, request, uid=None):
        return self._do(
            request,
            s.DecisionIn,
            lambda item, d: services.item_write_off_withdraw(item=item, actor=request.user, note=d.get("note", "")),
        )

    @extend_schema(request=s.NoteIn, responses=s.ContactOut)
    @action(detail=True, methods=["post"])
    def contact(self, request, uid=None):
        """Record that the citizen was contacted. The answer carries only what the counter may read about the
        payment (as the lookup shows it), not the item's causes, assignee or other people's notes."""
        return self._do(
            request,
            s.NoteIn,
            lambda item, d: services.item_record_contact(item=item, note=d["note"], actor=request.user),
            output=s.ContactOut,
        )

    @extend_schema(request=s.ReasonIn, responses=s.ItemDetailOut)
    @action(detail=True, methods=["post"])
    def reopen(self, request, uid=None):
        return self._do(
            request, s.ReasonIn, lambda item, d: services.item_reopen(item=item, reason=d["reason"], actor=request.user)
        )


class LedgerImportView(APIView):
    parser_classes = [PolicyMultiPartParser, PolicyFormParser]

    def get_permissions(self):
        return [IsAuthenticated(), has_perm("reconciliation.import_ledger")()]

    @extend_schema(request=s.LedgerImportIn, responses={201: dict, 200: dict, 400: dict})
    def post(self, request):
        """Import a ledger file. 201 with the report; 200 if the same file was imported before; 400 naming the
        line and field if it cannot be parsed (nothing applied)."""
        data = s.LedgerImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            report = services.ledger_import(
                data=upload.read(), fmt=data.validated_data["format"], original_name=upload.name, actor=request.user
            )
        except LedgerFormatError as exc:
            return Response(
                {"code": "invalid_file", "detail": str(exc), "line": exc.line_no, "field": exc.field},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(report.as_dict(), status=status.HTTP_200_OK if report.duplicate_file else 201)


class JournalStaffUploadView(APIView):
    """A journal uploaded by staff for a kiosk (e.g. copied off a kiosk that cannot reach the network)."""

    parser_classes = [PolicyMultiPartParser, PolicyFormParser]

    def get_permissions(self):
        return [IsAuthenticated(), has_perm("reconciliation.add_journalfile")()]

    @extend_schema(request=s.JournalStaffUploadIn, responses={201: dict})
    def post(self, request):
        data = s.JournalStaffUploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        kiosk = scope_kiosks(Kiosk.objects.all(), request.user).filter(serial=data.validated_data["kiosk"]).first()
        if kiosk is None:
            raise ValidationError({"kiosk": ["No such kiosk in your regions."]})
        report = services.journal_ingest(
            kiosk=kiosk,
            business_date=data.validated_data["business_date"],
            data=data.validated_data["file"].read(),
            uploaded_by=request.user,
        )
        code = 400 if report.rejected_file else (200 if report.duplicate_file else 201)
        return Response(report.as_dict(), status=code)


class RunView(APIView):
    def get_permissions(self):
        return [IsAuthenticated(), has_perm("reconciliation.run_reconciliation")()]

    @extend_schema(request=s.RunIn, responses={202: dict})
    def post(self, request):
        """Queue a reconcile run of a business day on the worker."""
        data = s.RunIn(data=request.data)
        data.is_valid(raise_exception=True)
        day = data.validated_data["business_date"].isoformat()
        tasks.reconcile_date.delay(day, trigger=f"api:{request.user.username}")
        return Response({"business_date": day, "queued": True}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    parameters=[
        OpenApiParameter("export", str, enum=["json", "csv", "xlsx"], required=False, description="download format")
    ],
    responses=dict,
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, has_perm("reconciliation.view_reconitem")])
def report(request, business_date):
    """The daily report; `?export=csv` or `?export=xlsx` downloads it. A day that is not a date, or lies outside
    the accepted window (core.inputs.date_problem), is a 400 naming business_date."""
    try:
        day = date.fromisoformat(business_date)
    except ValueError:
        raise ValidationError({"business_date": [gettext("Use a date as YYYY-MM-DD.")]}) from None
    if problem := inputs.date_problem(day):
        raise ValidationError({"business_date": [problem]})
    # Scoped exactly as the console's report: a district's user reads their district's totals, not the city's.
    data = selectors.day_report_for(day, request.user)
    fmt = request.query_params.get("export", "json")
    if fmt == "csv":
        response = HttpResponse(exports.report_csv(data), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{day}.csv"'
        return response
    if fmt == "xlsx":
        response = HttpResponse(
            exports.report_xlsx(data),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{day}.xlsx"'
        return response
    sheets = exports.report_rows(data)
    return Response(
        {
            "business_date": day,
            "match_rate": data["match_rate"],
            "outcomes": data["outcomes"],
            "amounts": data["amounts"],
            "cash": data["cash"],
            "per_channel": sheets["channels"],
            "per_kiosk": sheets["kiosks"],
        }
    )


@extend_schema(
    parameters=[OpenApiParameter("q", str, required=True, description="application, receipt, order or ID number")],
    responses=dict,
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, has_perm("reconciliation.lookup_payment")])
def payment_lookup(request):
    """Find a citizen's payment by application/receipt number, order number or ID number; explain it."""
    query = request.query_params.get("q", "").strip()
    if not query:
        raise ValidationError({"q": ["Enter an application, receipt or order number."]})
    views = lookup.find_payments(query, kiosk_scope=kiosk_scope_for(request.user))
    return Response(
        {
            "query": query,
            # The number also finds payments at kiosks outside the caller's districts (never shown).
            "outside_your_districts": views.outside_scope,
            "results": [
                {
                    "outcome": v.outcome,
                    "kiosk": v.journal_line.kiosk.serial if v.journal_line else (v.ledger_entry.kiosk_serial or None),
                    "txn_id": v.journal_line.txn_id if v.journal_line else None,
                    "occurred_at": v.journal_line.occurred_at if v.journal_line else None,
                    "amount": (v.journal_line or v.ledger_entry).amount,
                    "channel": (v.journal_line or v.ledger_entry).channel,
                    "channel_ref": (v.journal_line or v.ledger_entry).channel_ref,
                    "payer_ref": v.payer_ref_display,
                    "settled_at": v.ledger_entry.settled_at if v.ledger_entry else None,
                    "settlement_expected_by": v.deadline,
                    "item": v.item.uid if v.item else None,
                    "explanation": v.explanation,
                }
                for v in views
            ],
        }
    )
