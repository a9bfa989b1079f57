"""The staff API: read the fleet, and the few writes operators make. Every queryset is region-scoped."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.scoping import scope_kiosks, scope_sites
from core.permissions import has_perm
from core.validation import raise_as_drf
from fleet import services
from fleet.api.filters import KioskFilter
from fleet.api.serializers import (
    CommandIn,
    CommandStaffOut,
    KioskOut,
    KioskRegisterIn,
    MaintenanceIn,
    StatusChangeOut,
    TokenOut,
)
from fleet.models import Kiosk, RemoteCommand, Site


class KioskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Kiosks the caller may see (their regions), newest state first-class."""

    serializer_class = KioskOut
    lookup_field = "serial"
    lookup_value_converter = "serial"
    filterset_class = KioskFilter

    def get_permissions(self):
        perms = {
            "create": "fleet.add_kiosk",
            "rotate_token": "fleet.manage_credentials",
            "revoke_token": "fleet.manage_credentials",
            "maintenance": "fleet.set_maintenance",
            "commands": "fleet.add_remotecommand" if self.request.method == "POST" else "fleet.view_remotecommand",
            "cancel_command": "fleet.add_remotecommand",
        }
        return [IsAuthenticated(), has_perm(perms.get(self.action, "fleet.view_kiosk"))()]

    def get_queryset(self):
        return scope_kiosks(Kiosk.objects.select_related("site__region"), self.request.user).order_by("serial")

    @extend_schema(request=KioskRegisterIn, responses={201: TokenOut})
    def create(self, request):
        """Provision a kiosk; the response carries its token, shown this once."""
        data = KioskRegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        site = scope_sites(Site.objects.all(), request.user).filter(code=values.pop("site")).first()
        if site is None:
            raise ValidationError({"site": ["No such site in your regions."]})
        try:
            kiosk, token = services.kiosk_register(site=site, actor=request.user, **values)
        except DjangoValidationError as exc:
            raise_as_drf(exc)
        return Response({"serial": kiosk.serial, "token": token}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TokenOut})
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, serial=None):
        """Issue a new token; the old one stops working at once."""
        kiosk = self.get_object()
        token = services.credential_issue(kiosk=kiosk, actor=request.user)
        return Response({"serial": kiosk.serial, "token": token})

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"], url_path="revoke-token")
    def revoke_token(self, request, serial=None):
        services.credential_revoke(kiosk=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=StatusChangeOut(many=True))
    @action(detail=True, methods=["get"])
    def flips(self, request, serial=None):
        """The kiosk's status changes, newest first."""
        kiosk = self.get_object()
        page = self.paginate_queryset(kiosk.status_changes.all())
        return self.get_paginated_response(StatusChangeOut(page, many=True).data)

    @extend_schema(request=MaintenanceIn, responses=KioskOut)
    @action(detail=True, methods=["post", "delete"])
    def maintenance(self, request, serial=None):
        """POST starts maintenance (reason, optional until); DELETE ends it."""
        kiosk = self.get_object()
        try:
            if request.method == "DELETE":
                kiosk = services.kiosk_end_maintenance(kiosk=kiosk, actor=request.user)
            else:
                data = MaintenanceIn(data=request.data)
                data.is_valid(raise_exception=True)
                kiosk = services.kiosk_start_maintenance(kiosk=kiosk, actor=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise_as_drf(exc)
        return Response(KioskOut(kiosk).data)

    @extend_schema(request=CommandIn, responses=CommandStaffOut(many=True))
    @action(detail=True, methods=["get", "post"])
    def commands(self, request, serial=None):
        """GET lists the kiosk's commands; POST queues one for its next heartbeat."""
        kiosk = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(kiosk.commands.select_related("created_by"))
            return self.get_paginated_response(CommandStaffOut(page, many=True).data)
        data = CommandIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            command = services.command_enqueue(kiosk=kiosk, actor=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise_as_drf(exc)
        return Response(CommandStaffOut(command).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CommandStaffOut)
    @action(detail=True, methods=["post"], url_path="commands/<uuid:command_id>/cancel")
    def cancel_command(self, request, serial=None, command_id=None):
        kiosk = self.get_object()
        command = get_object_or_404(RemoteCommand, pk=command_id, kiosk=kiosk)
        try:
            command = services.command_cancel(command=command, actor=request.user)
        except DjangoValidationError as exc:
            raise_as_drf(exc)
        return Response(CommandStaffOut(command).data)
