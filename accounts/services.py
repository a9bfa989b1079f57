"""Writes for console users: roles and region scope."""

import logging
from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, transaction

from accounts.models import OperatorProfile
from accounts.roles import Role
from core import registry

logger = logging.getLogger(__name__)


@transaction.atomic
def operator_set_scope(*, user, regions: Iterable = (), all_regions: bool = False) -> OperatorProfile:
    profile, _ = OperatorProfile.objects.get_or_create(user=user)
    profile.all_regions = all_regions
    profile.save(update_fields=["all_regions"])
    profile.regions.set(list(regions))
    return profile


def roles_sync(*, using: str = DEFAULT_DB_ALIAS) -> list[Group]:
    """Create or update every role group so it holds exactly the permissions the apps grant it (core.registry).

    Run after every migrate (accounts.apps) and after a test flush, so a new database and every later change to
    an app's grants are right. A granted permission that does not exist is left out and logged: its app is not
    migrated yet (a partial migrate), or the grant names it wrongly."""
    unknown = registry.granted_roles() - set(Role.values)
    if unknown:
        logger.warning("Permissions granted to roles that do not exist, left out: %s", sorted(unknown))
    with transaction.atomic(using=using):
        groups = []
        for role in Role:
            group, _ = Group.objects.using(using).get_or_create(name=role.value)
            wanted = registry.role_permissions(role)
            found = [
                p
                for p in Permission.objects.using(using)
                .select_related("content_type")
                .filter(codename__in={dotted.split(".", 1)[1] for dotted in wanted})
                if f"{p.content_type.app_label}.{p.codename}" in wanted
            ]
            missing = wanted - {f"{p.content_type.app_label}.{p.codename}" for p in found}
            if missing:
                logger.warning("Role %s: permissions granted but not found, left out: %s", role.value, sorted(missing))
            group.permissions.set(found)
            groups.append(group)
        return groups
