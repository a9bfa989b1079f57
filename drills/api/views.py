"""Staff API of drills: the list and one drill, planning, and start / abort / finish as POST actions; training
records. Scoped to the caller's districts; every change through drills/services.py (a 409 when the drill's status
does not allow it)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Region
from accounts.scoping import scope_kiosks
from core.permissions import has_perm
from core.validation import raise_as_drf
from drills import selectors, services
from drills.api import serializers as s
from fleet.models import Kiosk

VIEW = "drills.view_drills"
RUN = "drills.run_drill"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "illegal_transition"


def _call(call):
    try:
        return call()
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict") and any(e.code == "illegal_transition" for e in error.error_list):
            raise Conflict(" ".join(error.messages)) from error
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


class DrillListView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(responses=s.DrillOut(many=True), summary="Drills")
    def get(self, request):
        return Response(s.DrillOut(selectors.drills_visible(request.user)[:200], many=True).data)

    @extend_schema(request=s.DrillIn, responses={201: s.DrillOut}, summary="Plan a drill")
    def post(self, request):
        if not request.user.has_perm(RUN):
            raise PermissionDenied()
        data = s.DrillIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        region = Region.objects.filter(code=v["region"]).first()
        if region is None:
            raise ValidationError({"region": ["No such district."]})
        serials = list(dict.fromkeys(v["kiosks"]))
        kiosks = list(
            scope_kiosks(Kiosk.objects.filter(serial__in=serials, drill_of__isnull=True), request.user).select_related(
                "site"
            )
        )
        if len(kiosks) != len(serials):
            raise ValidationError(
                {"kiosks": ["Unknown kiosks: " + ", ".join(sorted(set(serials) - {k.serial for k in kiosks}))[:300]]}
            )
        people = list(get_user_model().objects.filter(username__in=v.get("participants", []), is_active=True))
        drill = _call(
            lambda: services.drill_plan(
                actor=request.user,
                title=v["title"],
                scenario=v["scenario"],
                region=region,
                kiosks=kiosks,
                window_start=v["window_start"],
                window_end=v["window_end"],
                targets=v.get("targets"),
                participants=people,
                allow_real_out_of_service=v["allow_real_out_of_service"],
            )
        )
        return Response(s.DrillOut(drill).data, status=201)


class DrillDetailView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(responses=s.DrillOut, summary="One drill, with its score and actions")
    def get(self, request, uid):
        return Response(s.DrillOut(selectors.drill_for(request.user, uid)).data)


class DrillActionView(APIView):
    permission_classes = [IsAuthenticated, has_perm(RUN)]

    @extend_schema(
        request=s.AbortIn,
        responses=s.DrillOut,
        summary="start, abort (with a reason) or finish a drill",
        operation_id="v1_drills_action",
    )
    def post(self, request, uid, action: str):
        drill = selectors.drill_for(request.user, uid)
        if action == "start":
            drill = _call(lambda: services.drill_start(drill=drill, actor=request.user))
        elif action == "finish":
            drill = _call(lambda: services.drill_finish(drill=drill, actor=request.user))
        elif action == "abort":
            data = s.AbortIn(data=request.data)
            data.is_valid(raise_exception=True)
            drill = _call(
                lambda: services.drill_abort(drill=drill, actor=request.user, reason=data.validated_data["reason"])
            )
        else:
            raise NotFound()
        return Response(s.DrillOut(drill).data)


class ActionListView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(responses=s.DrillActionListOut(many=True), summary="The drills' lessons as actions, open ones first")
    def get(self, request):
        return Response(s.DrillActionListOut(selectors.actions_visible(request.user)[:500], many=True).data)


class TrainingListView(APIView):
    permission_classes = [IsAuthenticated, has_perm("drills.view_trainingrecord")]

    @extend_schema(responses=s.TrainingOut(many=True), summary="Training records")
    def get(self, request):
        return Response(s.TrainingOut(selectors.training_visible(request.user)[:500], many=True).data)
