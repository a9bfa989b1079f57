"""Staff API of analytics: the figures of a period by one dimension (the same numbers as the console), the
six-monthly reviews with their actions, and marking an action done. Scoped to the caller's regions."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import report, selectors, services
from analytics.api import serializers as s
from analytics.models import Review, ReviewAction
from core.permissions import has_perm
from core.validation import raise_as_drf

VIEW = "analytics.view_analytics"


def _call(call):
    try:
        return call()
    except DjangoValidationError as error:
        raise_as_drf(error)
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error) or None) from error


class FiguresView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(parameters=[s.FiguresQuery], responses=s.Figures, summary="Figures of a period by one dimension")
    def get(self, request):
        query = s.FiguresQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = selectors.Period(query.validated_data["start"], query.validated_data["end"])
        data = report.figures_page(request.user, period, query.validated_data["by"])
        return Response({key: data[key] for key in ("period", "dimension", "total", "rows", "trend", "problems")})


def _review(code: str) -> Review:
    year, _sep, half = code.upper().partition("H")
    if not (year.isdigit() and half in ("1", "2") and len(year) == 4):
        raise ValidationError({"code": "A half-year is written like 2026H1."})
    return get_object_or_404(Review.objects.prefetch_related("actions__owner"), year=int(year), half=int(half))


class ReviewListView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(responses=s.ReviewOut(many=True), summary="The six-monthly reviews")
    def get(self, request):
        reviews = Review.objects.prefetch_related("actions__owner").order_by("-year", "-half")
        return Response(s.ReviewOut(reviews, many=True).data)


class ReviewDetailView(APIView):
    permission_classes = [IsAuthenticated, has_perm(VIEW)]

    @extend_schema(responses=s.ReviewOut, summary="One review, with its actions")
    def get(self, request, code: str):
        return Response(s.ReviewOut(_review(code)).data)


class ReviewActionCreateView(APIView):
    permission_classes = [IsAuthenticated, has_perm("analytics.own_review")]

    @extend_schema(request=s.ReviewActionIn, responses={201: s.ReviewActionOut}, summary="Add an action to a review")
    def post(self, request, code: str):
        review = _review(code)
        data = s.ReviewActionIn(data=request.data)
        data.is_valid(raise_exception=True)
        owner = get_user_model().objects.filter(username=data.validated_data["owner"], is_active=True).first()
        if owner is None:
            raise ValidationError({"owner": ["No such person."]})
        action = _call(
            lambda: services.review_action_add(
                review=review,
                text=data.validated_data["text"],
                owner=owner,
                due_on=data.validated_data["due_on"],
                actor=request.user,
            )
        )
        return Response(s.ReviewActionOut(action).data, status=201)


class ActionDoneView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.ActionDoneIn, responses=s.ReviewActionOut, summary="Mark an action done")
    def post(self, request, pk: int):
        action = get_object_or_404(ReviewAction.objects.select_related("owner"), pk=pk)
        if action.owner_id != request.user.pk and not request.user.has_perm("analytics.own_review"):
            raise PermissionDenied()
        data = s.ActionDoneIn(data=request.data)
        data.is_valid(raise_exception=True)
        action = _call(
            lambda: services.review_action_done(action=action, note=data.validated_data["note"], actor=request.user)
        )
        return Response(s.ReviewActionOut(action).data)
