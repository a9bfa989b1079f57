"""Region scoping: what part of the fleet a user may see. Every page and API endpoint goes through here."""

from django.db.models import QuerySet


def user_sees_all_regions(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "operator_profile", None)
    return bool(profile and profile.all_regions)


def visible_region_ids(user) -> list[int] | None:
    """The ids of the regions a user may see, or None for all of them."""
    if user_sees_all_regions(user):
        return None
    if not user.is_authenticated:
        return []
    profile = getattr(user, "operator_profile", None)
    if profile is None:
        return []
    return list(profile.regions.values_list("id", flat=True))


def scope_kiosks(queryset: QuerySet, user) -> QuerySet:
    region_ids = visible_region_ids(user)
    return queryset if region_ids is None else queryset.filter(site__region_id__in=region_ids)


def scope_sites(queryset: QuerySet, user) -> QuerySet:
    region_ids = visible_region_ids(user)
    return queryset if region_ids is None else queryset.filter(region_id__in=region_ids)


def scope_regions(queryset: QuerySet, user) -> QuerySet:
    region_ids = visible_region_ids(user)
    return queryset if region_ids is None else queryset.filter(id__in=region_ids)
