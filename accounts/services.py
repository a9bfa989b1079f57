"""Writes for console users: roles and region scope."""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import OperatorProfile
from accounts.roles import ROLE_PERMISSIONS


@transaction.atomic
def operator_set_scope(*, user, regions: Iterable = (), all_regions: bool = False) -> OperatorProfile:
    profile, _ = OperatorProfile.objects.get_or_create(user=user)
    profile.all_regions = all_regions
    profile.save(update_fields=["all_regions"])
    profile.regions.set(list(regions))
    return profile


@transaction.atomic
def roles_sync() -> list[Group]:
    """Create or update every role group so it has exactly the permissions accounts.roles lists.

    Migrations create the groups on a new database; this restores them after a flush or a change to the list."""
    groups = []
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
        groups.append(group)
    return groups
