"""Writes of the analytics app: the six-monthly review and its actions, and the summaries' refresh."""

from datetime import date, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics import refresh
from analytics.models import Review, ReviewAction
from core.inputs import text_problem


def clean_text(value, *, field: str, max_length: int) -> str:
    """Text a person typed: refused when PostgreSQL could not store it (NUL, a lone surrogate) or it is too long."""
    value = str(value or "").strip()
    problem = text_problem(value)
    if problem:
        raise ValidationError({field: problem})
    if len(value) > max_length:
        raise ValidationError({field: _("At most %(n)d characters.") % {"n": max_length}})
    return value


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied(_("You may not do this."))


def analytics_refresh(*, first: date, last: date) -> dict:
    """Recompute the summaries of a period (idempotent; the task and the command call it)."""
    if last < first:
        raise ValidationError(_("The period ends before it starts."))
    return refresh.refresh(first, last)


def month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def analytics_refresh_period(*, first: date, last: date) -> dict:
    """A long period (a backfill, the demo's history), month by month so no transaction holds a year. The last 28
    days go first: an old day whose own 28 days have no journal estimates its lost payments from the kiosk's latest
    rate, which must be there already. Oldest first after that, so each day's trailing window is summed before it.
    Running it twice gives the same rows."""
    if last < first:
        raise ValidationError(_("The period ends before it starts."))
    today = timezone.localdate()
    totals = {"kiosk_days": 0, "incidents": 0, "inspections": 0}
    recent = today - timedelta(days=refresh.RATE_WINDOW_DAYS - 1)
    if first < recent:
        refresh.refresh(recent, today)
    day = first
    while day <= last:
        end = min(month_end(day), last)
        for key, value in refresh.refresh(day, end).items():
            totals[key] += value
        day = end + timedelta(days=1)
    return totals


@transaction.atomic
def review_open(*, year: int, half: int, actor) -> Review:
    """The review of one half-year, opened as a draft (the same half again returns the existing one)."""
    _require(actor, "analytics.own_review")
    if half not in (1, 2) or not 2000 <= year <= timezone.localdate().year + 1:
        raise ValidationError(_("No such half-year."))
    review, _created = Review.objects.get_or_create(
        year=year, half=half, defaults={"created_at": timezone.now(), "created_by": actor}
    )
    return review


@transaction.atomic
def review_save_summary(*, review: Review, summary: str, actor) -> Review:
    _require(actor, "analytics.own_review")
    review = Review.objects.select_for_update().get(pk=review.pk)
    if review.status == Review.Status.PUBLISHED:
        raise ValidationError(_("A published review is not changed."))
    review.summary = clean_text(summary, field="summary", max_length=5000)
    review.save(update_fields=["summary"])
    return review


@transaction.atomic
def review_publish(*, review: Review, snapshot: dict, actor) -> Review:
    """Freeze the review's figures as management read them."""
    _require(actor, "analytics.own_review")
    updated = Review.objects.filter(pk=review.pk, status=Review.Status.DRAFT).update(
        status=Review.Status.PUBLISHED, snapshot=snapshot, published_at=timezone.now(), published_by=actor
    )
    if not updated:
        raise ValidationError(_("This review is already published."))
    return Review.objects.get(pk=review.pk)


@transaction.atomic
def review_action_add(*, review: Review, text: str, owner, due_on: date, actor) -> ReviewAction:
    """A recommendation of the review, as an action with an owner and a due date."""
    _require(actor, "analytics.own_review")
    if review.status == Review.Status.PUBLISHED:
        raise ValidationError(_("A published review is not changed: put new actions in the next review."))
    text = clean_text(text, field="text", max_length=500)
    if not text:
        raise ValidationError({"text": _("Write the recommendation.")})
    if owner is None or not owner.is_active:
        raise ValidationError({"owner": _("Choose who owns the action.")})
    if due_on < review_period_start(review):
        raise ValidationError({"due_on": _("The due date is before the half-year reviewed.")})
    return ReviewAction.objects.create(
        review=review, text=text, owner=owner, due_on=due_on, created_at=timezone.now(), created_by=actor
    )


@transaction.atomic
def review_action_done(*, action: ReviewAction, note: str, actor) -> ReviewAction:
    """Mark an action done, saying how: its owner or a review owner."""
    if actor.pk != action.owner_id:
        _require(actor, "analytics.own_review")
    note = clean_text(note, field="note", max_length=500)
    if not note:
        raise ValidationError({"note": _("Say how the action was done.")})
    updated = ReviewAction.objects.filter(pk=action.pk, done_at__isnull=True).update(
        done_at=timezone.now(), done_note=note
    )
    if not updated:
        raise ValidationError(_("This action is already done."))
    return ReviewAction.objects.get(pk=action.pk)


def review_period_start(review: Review) -> date:
    return date(review.year, 1 if review.half == 1 else 7, 1)
