"""Permission helpers shared by every app's API: a DRF permission class for one Django model permission."""

from rest_framework.permissions import BasePermission


def has_perm(perm: str) -> type[BasePermission]:
    """A permission class requiring one Django model permission, e.g. has_perm("fleet.add_remotecommand")."""

    class HasPerm(BasePermission):
        message = f"You need the {perm} permission."

        def has_permission(self, request, view):
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    HasPerm.__name__ = f"HasPerm_{perm.replace('.', '_')}"
    return HasPerm
