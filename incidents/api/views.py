"""Staff API of incidents: the queue and one incident, its timeline and checklist, the likely causes, the state
transitions as explicit POST actions, manual reports, and the response configuration (playbooks, SLA policies,
escalation chains).

Every read is scoped to the caller's regions: another region's incident is a 404. Every change goes through
incidents.services, which checks the permission and the state again: a ValidationError is a 400 naming the field,
a PermissionDenied a 403, and a transition the incident's state does not allow a 409 that changes nothing."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.scoping import scope_kiosks, visible_region_ids
from core.permissions import has_perm
from core.validation import raise_as_drf
from fleet.models import Kiosk
from incidents import diagnosis, selectors, services
from incidents.api import serializers as s
from incidents.api.filters import IncidentFilter
from incidents.models import (
    Attachment,
    ChecklistItem,
    EscalationChain,
    EscalationStep,
    Incident,
    Playbook,
    PlaybookVersion,
    SlaPolicy,
    State,
    TimelineEntry,
)

VIEW = "incidents.view_incident"
WORK = "incidents.work_incident"
MANAGE = "incidents.manage_response"

CONFLICT = OpenApiResponse(description="The incident's state does not allow this; nothing changed.")


def _is_illegal_transition(error: DjangoValidationError) -> bool:
    return not hasattr(error, "error_dict") and any(e.code == "illegal_transition" for e in error.error_list)


def call_service(call):
    """Run a service: its ValidationError is a 400 naming the field (409 for a transition the state does not
    allow), its PermissionDenied a 403."""
    try:
        return call()
    except DjangoValidationError as error:
        if _is_illegal_transition(error):
            raise Conflict(" ".join(error.messages)) from error
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


class Conflict(APIException):
    """409: the incident's state does not allow the action (e.g. resolving a closed incident)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "illegal_transition"


@extend_schema_view(
    list=extend_schema(description="Incidents of the caller's regions, most urgent first (`ordering`)."),
    retrieve=extend_schema(description="One incident with its evidence, SLA and escalation copies and photos."),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents. State changes are explicit POST actions, each written to the incident's timeline."""

    lookup_field = "pk"
    lookup_url_kwarg = "incident_id"
    lookup_value_converter = "int"
    filterset_class = IncidentFilter

    def get_permissions(self):
        if self.action in ("list", "retrieve", "timeline", "likely_causes") or (
            self.action == "checklist" and self.request.method == "GET"
        ):
            perm = VIEW
        elif self.action == "report":
            perm = VIEW  # the service asks for report_incident or work_incident
        else:
            perm = WORK
        return [IsAuthenticated(), has_perm(perm)()]

    def get_queryset(self):
        incidents = selectors.incidents_for_user(self.request.user).select_related(
            "kiosk", "site", "region", "assignee", "acknowledged_by", "reported_by", "playbook_version__playbook"
        )
        if self.action == "retrieve":
            incidents = incidents.prefetch_related(
                Prefetch("attachments", queryset=Attachment.objects.select_related("uploaded_by"))
            )
        return incidents

    def get_serializer_class(self):
        return s.IncidentDetailOut if self.action == "retrieve" else s.IncidentOut

    def _detail(self, incident: Incident, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().prefetch_related("attachments__uploaded_by").get(pk=incident.pk)
        return Response(s.IncidentDetailOut(fresh).data, status=code)

    def _act(self, request, input_class, call) -> Response:
        data = None
        if input_class is not None:
            data = input_class(data=request.data)
            data.is_valid(raise_exception=True)
            data = data.validated_data
        incident = self.get_object()
        call_service(lambda: call(incident, data))
        return self._detail(incident)

    # --- Transitions ---------------------------------------------------------------------------------------

    @extend_schema(request=None, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, incident_id=None):
        """Take it: triage starts, the escalation chain stops."""
        return self._act(request, None, lambda i, d: services.incident_acknowledge(incident=i, actor=request.user))

    @extend_schema(request=s.IncidentMoveIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="remote-fix")
    def remote_fix(self, request, incident_id=None):
        """Remote fix under way (远程修复)."""
        return self._act(request, s.IncidentMoveIn, self._move(State.REMOTE_FIX))

    @extend_schema(request=s.IncidentMoveIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def onsite(self, request, incident_id=None):
        """A technician on site (现场处理)."""
        return self._act(request, s.IncidentMoveIn, self._move(State.ONSITE))

    @extend_schema(request=s.IncidentMoveIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="back-to-triage")
    def back_to_triage(self, request, incident_id=None):
        """Back to triage (a resolved incident that does not serve after all)."""
        return self._act(request, s.IncidentMoveIn, self._move(State.ACKNOWLEDGED))

    def _move(self, to):
        return lambda i, d: services.incident_move(incident=i, actor=self.request.user, to=to, note=d["note"])

    @extend_schema(request=s.IncidentResolveIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resolve(self, request, incident_id=None):
        """The kiosk serves again (已恢复), pending verification."""
        return self._act(
            request,
            s.IncidentResolveIn,
            lambda i, d: services.incident_resolve(incident=i, actor=request.user, resolution=d["resolution"]),
        )

    @extend_schema(request=s.IncidentMoveIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def close(self, request, incident_id=None):
        """Verified and closed (已关闭)."""
        return self._act(
            request,
            s.IncidentMoveIn,
            lambda i, d: services.incident_close(incident=i, actor=request.user, note=d["note"]),
        )

    @extend_schema(request=s.IncidentCancelIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, incident_id=None):
        """A false alarm (误报), with its reason."""
        return self._act(
            request,
            s.IncidentCancelIn,
            lambda i, d: services.incident_cancel(incident=i, actor=request.user, reason=d["reason"]),
        )

    @extend_schema(request=s.IncidentAssignIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def assign(self, request, incident_id=None):
        """Give it to someone who works incidents of its region (empty: nobody)."""

        def call(incident, data):
            assignee = None
            if data["assignee"]:
                assignee = get_user_model().objects.filter(username=data["assignee"], is_active=True).first()
                if assignee is None:
                    raise DjangoValidationError({"assignee": _("No such person.")})
            return services.incident_assign(incident=incident, actor=request.user, assignee=assignee)

        return self._act(request, s.IncidentAssignIn, call)

    @extend_schema(request=s.IncidentSeverityIn, responses={200: s.IncidentDetailOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def severity(self, request, incident_id=None):
        """Change the severity, saying why (a security incident stays P1)."""
        return self._act(
            request,
            s.IncidentSeverityIn,
            lambda i, d: services.incident_set_severity(
                incident=i, actor=request.user, severity=d["severity"], reason=d["reason"]
            ),
        )

    @extend_schema(request=s.IncidentNoteIn, responses={201: s.TimelineEntryOut})
    @action(detail=True, methods=["post"])
    def note(self, request, incident_id=None):
        """A note on the timeline."""
        data = s.IncidentNoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        incident = self.get_object()
        added = call_service(
            lambda: services.incident_note(incident=incident, actor=request.user, text=data.validated_data["text"])
        )
        return Response(s.TimelineEntryOut(added).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.IncidentCommandIn, responses={201: s.IncidentCommandSentOut, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def command(self, request, incident_id=None):
        """Send a remote command to the incident's kiosk (needs fleet.add_remotecommand too); the incident moves to
        remote fix and the result lands on its timeline."""
        data = s.IncidentCommandIn(data=request.data)
        data.is_valid(raise_exception=True)
        incident = self.get_object()
        sent = call_service(
            lambda: services.incident_send_command(incident=incident, actor=request.user, **data.validated_data)
        )
        return Response(s.IncidentCommandSentOut(sent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.IncidentBulkAcknowledgeIn,
        responses=s.IncidentBulkResultOut,
        operation_id="v1_incidents_bulk_acknowledge",
    )
    @action(detail=False, methods=["post"], url_path="acknowledge")
    def bulk_acknowledge(self, request):
        """Acknowledge many at once; each that cannot be (moved on, not yours to work) is named in `problems`.
        Incidents outside the caller's regions are not looked at."""
        data = s.IncidentBulkAcknowledgeIn(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True))
        done, problems = services.incidents_acknowledge_bulk(incident_ids=ids, actor=request.user)
        return Response({"acknowledged": done, "problems": problems})

    # --- Reading -------------------------------------------------------------------------------------------

    @extend_schema(responses=s.TimelineEntryOut(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, incident_id=None):
        """The incident's record (执行记录), oldest first, a page at a time."""
        incident = self.get_object()
        entries = TimelineEntry.objects.filter(incident=incident).select_related("actor").order_by("at", "id")
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.TimelineEntryOut(page, many=True).data)

    @extend_schema(
        methods=["GET"],
        responses=s.ChecklistOut,
        description="The triage steps of the incident's playbook version, with the error catalog's first checks for "
        "the kiosk's current codes beside them.",
    )
    @action(detail=True, methods=["get"])
    def checklist(self, request, incident_id=None):
        incident = self.get_object()
        items = incident.checklist.select_related("done_by").order_by("position")
        return Response(s.ChecklistOut({"items": items, "catalog_checks": diagnosis.catalog_checks(incident)}).data)

    @extend_schema(request=s.IncidentChecklistResultIn, responses={200: s.ChecklistItemOut, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="checklist/<int:position>")
    def checklist_item(self, request, incident_id=None, position=None):
        """Record one triage step's result (fine, problem found, not applicable) and a note."""
        data = s.IncidentChecklistResultIn(data=request.data)
        data.is_valid(raise_exception=True)
        incident = self.get_object()
        item = get_object_or_404(ChecklistItem, incident=incident, position=position)
        item = call_service(lambda: services.checklist_record(item=item, actor=request.user, **data.validated_data))
        return Response(s.ChecklistItemOut(item).data)

    @extend_schema(
        responses=s.IncidentCauseOut(many=True),
        description="The likely causes, most likely first, each with the measure most likely to work, the evidence "
        "and the counts behind it (statistics over the fleet's own past incidents).",
    )
    @action(detail=True, methods=["get"], url_path="likely-causes", pagination_class=None)
    def likely_causes(self, request, incident_id=None):
        incident = self.get_object()
        return Response(s.IncidentCauseOut(diagnosis.likely_causes(incident), many=True).data)

    # --- Reports by hand -----------------------------------------------------------------------------------

    @extend_schema(
        request={"application/json": s.IncidentReportIn, "multipart/form-data": s.IncidentReportIn},
        responses={201: s.IncidentReportOut, 200: s.IncidentReportOut},
        description="Record a fault a citizen or hall staff reported. 201 with a new incident; 200 when the kiosk "
        "already had an open incident of that kind, which the report was added to.",
    )
    @action(detail=False, methods=["post"])
    def report(self, request):
        data = s.IncidentReportIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kiosk = scope_kiosks(Kiosk.objects.all(), request.user).filter(serial=values["kiosk"]).first()
        if kiosk is None:
            raise ValidationError({"kiosk": [_("No such kiosk in your regions.")]})
        report = services.ManualReport(
            kiosk=kiosk,
            fault_kind=values["fault_kind"],
            symptom=values["symptom"],
            observed_at=values.get("observed_at") or timezone.now(),
            reporter_name=values["reporter_name"],
            reporter_contact=values["reporter_contact"],
        )
        incident, created = call_service(
            lambda: services.incident_report(report=report, actor=request.user, photos=values["photos"])
        )
        fresh = self.get_queryset().prefetch_related("attachments__uploaded_by").get(pk=incident.pk)
        return Response(
            {"created": created, "incident": s.IncidentDetailOut(fresh).data},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- Response configuration ----------------------------------------------------------------------------------


class PlaybookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The triage playbooks, one per fault kind, with their versions (newest first)."""

    serializer_class = s.PlaybookOut
    lookup_field = "fault_kind"
    lookup_value_converter = "slug"
    pagination_class = None

    def get_permissions(self):
        perm = MANAGE if self.action == "versions" else "incidents.view_playbook"
        return [IsAuthenticated(), has_perm(perm)()]

    def get_queryset(self):
        versions = PlaybookVersion.objects.select_related("created_by").order_by("-number")
        return Playbook.objects.prefetch_related(Prefetch("versions", queryset=versions)).order_by("fault_kind")

    @extend_schema(request=s.PlaybookVersionIn, responses={201: s.PlaybookOut})
    @action(detail=True, methods=["post"])
    def versions(self, request, fault_kind=None):
        """Publish the next version of the playbook (needs incidents.manage_response). Incidents keep the version
        they started with."""
        data = s.PlaybookVersionIn(data=request.data)
        data.is_valid(raise_exception=True)
        playbook = self.get_object()
        call_service(
            lambda: services.playbook_publish_version(playbook=playbook, actor=request.user, **data.validated_data)
        )
        return Response(s.PlaybookOut(self.get_queryset().get(pk=playbook.pk)).data, status=status.HTTP_201_CREATED)


class SlaPolicyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """SLA targets per severity, in minutes. PUT or PATCH needs incidents.manage_response; incidents already open
    keep the targets they took when they opened."""

    serializer_class = s.SlaPolicyOut
    queryset = SlaPolicy.objects.order_by("severity")
    lookup_field = "severity"
    lookup_value_converter = "int"
    pagination_class = None

    def get_permissions(self):
        perm = MANAGE if self.action in ("update", "partial_update") else "incidents.view_slapolicy"
        return [IsAuthenticated(), has_perm(perm)()]

    @extend_schema(request=s.SlaPolicyIn, responses=s.SlaPolicyOut)
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        data = s.SlaPolicyIn(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        policy = self.get_object()
        policy = call_service(
            lambda: services.sla_policy_update(policy=policy, actor=request.user, **data.validated_data)
        )
        return Response(s.SlaPolicyOut(policy).data)

    @extend_schema(request=s.SlaPolicyIn, responses=s.SlaPolicyOut)
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


class EscalationChainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who is told, in order, while an incident stays unacknowledged: the chains of the caller's regions and the
    city-wide ones."""

    serializer_class = s.EscalationChainOut
    lookup_url_kwarg = "chain_id"
    lookup_value_converter = "int"
    pagination_class = None

    def get_permissions(self):
        return [IsAuthenticated(), has_perm("incidents.view_slapolicy")()]

    def get_queryset(self):
        steps = EscalationStep.objects.select_related("user").order_by("position")
        chains = EscalationChain.objects.select_related("region").prefetch_related(Prefetch("steps", queryset=steps))
        region_ids = visible_region_ids(self.request.user)
        if region_ids is not None:
            chains = chains.filter(Q(region__isnull=True) | Q(region_id__in=region_ids))
        return chains.order_by("severity", "region__code", "id")
