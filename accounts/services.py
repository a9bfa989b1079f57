"""Writes for console users: roles and region scope."""

from collections.abc import Iterable

from django.db import transaction

from accounts.models import OperatorProfile


@transaction.atomic
def operator_set_scope(*, user, regions: Iterable = (), all_regions: bool = False) -> OperatorProfile:
    profile, _ = OperatorProfile.objects.get_or_create(user=user)
    profile.all_regions = all_regions
    profile.save(update_fields=["all_regions"])
    profile.regions.set(list(regions))
    return profile
