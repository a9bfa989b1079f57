"""Each app grants its own permissions to the roles, and the role groups hold exactly what the apps grant."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from accounts.roles import Role
from accounts.services import roles_sync
from core import registry


def group_permissions(role) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.parametrize("role", list(Role))
def test_after_migrate_each_role_group_holds_exactly_the_permissions_the_apps_grant_it(db, role):
    granted = registry.role_permissions(role)

    assert granted, f"no app grants {role} anything"
    assert group_permissions(role) == granted


def test_the_apps_grant_permissions_only_to_roles_accounts_knows(db):
    assert registry.granted_roles() == set(Role.values)


def test_operations_managers_and_technical_support_may_read_the_heartbeats_set_aside(db):
    for role in (Role.OPERATIONS_MANAGER, Role.TECHNICAL_SUPPORT):
        assert "fleet.view_heartbeatdeadletter" in group_permissions(role)
    for role in (Role.FIELD_TECHNICIAN, Role.DRILL_COORDINATOR, Role.FINANCE_OFFICER, Role.COUNTER_STAFF):
        assert "fleet.view_heartbeatdeadletter" not in group_permissions(role)


def test_every_role_that_sees_the_fleet_may_read_its_regions_which_accounts_grants(db):
    for role in Role:
        if "fleet.view_kiosk" in group_permissions(role):
            assert "accounts.view_region" in group_permissions(role), role
    assert not Permission.objects.filter(content_type__app_label="fleet", codename__endswith="_region").exists()


def test_counter_staff_are_granted_the_payment_lookup_and_nothing_of_the_fleet(db):
    # and the halls' guidance page: they are the counter the notices send citizens to.
    assert group_permissions(Role.COUNTER_STAFF) == {
        "reconciliation.lookup_payment",
        "reconciliation.contact_citizen",
        "guidance.view_hallguidance",
    }


def test_a_role_group_changed_by_hand_is_put_back_by_the_next_migrate(db):
    group = Group.objects.get(name=Role.FIELD_TECHNICIAN)
    group.permissions.remove(Permission.objects.get(content_type__app_label="fleet", codename="view_kiosk"))
    group.permissions.add(Permission.objects.get(content_type__app_label="fleet", codename="delete_kiosk"))

    call_command("migrate", verbosity=0)

    assert group_permissions(Role.FIELD_TECHNICIAN) == registry.role_permissions(Role.FIELD_TECHNICIAN)


def test_role_groups_deleted_are_made_again_by_the_sync(db):
    Group.objects.all().delete()

    roles_sync()

    assert set(Group.objects.values_list("name", flat=True)) == set(Role.values)
    assert group_permissions(Role.FINANCE_SUPERVISOR) == registry.role_permissions(Role.FINANCE_SUPERVISOR)


def test_a_second_sync_changes_nothing(db):
    before = {role: group_permissions(role) for role in Role}

    roles_sync()

    assert {role: group_permissions(role) for role in Role} == before


def test_an_app_may_grant_only_its_own_permissions():
    with pytest.raises(registry.RegistryError, match="only its own"):
        registry.grant("fleet", Role.COUNTER_STAFF, ["reconciliation.approve_writeoff"])

    assert "reconciliation.approve_writeoff" not in registry.role_permissions(Role.COUNTER_STAFF)


def test_a_permission_not_written_app_label_dot_codename_is_refused():
    with pytest.raises(registry.RegistryError, match="app_label.codename"):
        registry.grant("fleet", Role.COUNTER_STAFF, ["view_kiosk"])


def test_a_navigation_entry_registered_twice_differently_is_refused():
    with pytest.raises(registry.RegistryError, match="twice"):
        registry.add_nav(registry.NavEntry("fleet:board", "Another board", ("fleet.view_kiosk",), order=99))
