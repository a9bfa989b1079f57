"""What each app plugs into the console: the permissions it grants each role, its navigation entries and its
landing pages.

Apps register here from their ``AppConfig.ready``; core names no app and no role. accounts reads the grants to
keep the role groups in step (``accounts.services.roles_sync``, run after every migrate), the landing view reads
the landing pages, and the console's navigation (``core_console.console_nav``) reads the entries. A new app
plugs in by registering, without editing accounts or the base template.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace


class RegistryError(ValueError):
    """An app registered something malformed: a permission not its own, or an entry twice."""


@dataclass(frozen=True)
class NavEntry:
    """A link in the console's top navigation, shown to users holding any of its permissions."""

    url_name: str  # "app:name", reversed without arguments
    label: str  # a gettext_lazy string, so it renders in the reader's language
    permissions: tuple[str, ...]  # "app_label.codename"; any one of them shows the entry
    order: int
    # View names ("app:name") under which the entry is marked as the current page; the entry's own by default.
    current: tuple[str, ...] = ()

    def is_current(self, view_name: str | None) -> bool:
        return view_name in (self.current or (self.url_name,))


@dataclass(frozen=True)
class LandingPage:
    """A page a user may land on after logging in: the first one, by order, whose permission they hold.

    ``roles`` makes it the landing page of those roles whatever else they may open (finance staff can see the
    board too, but their work is the queue)."""

    url_name: str
    permission: str
    order: int
    roles: tuple[str, ...] = ()


@dataclass
class _Registry:
    grants: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    nav: dict[str, NavEntry] = field(default_factory=dict)
    landing: dict[str, LandingPage] = field(default_factory=dict)


_registry = _Registry()


def _check_own(app_label: str, permissions) -> None:
    for perm in permissions:
        owner, dot, codename = perm.partition(".")
        if not dot or not codename:
            raise RegistryError(f"{perm!r} is not an 'app_label.codename' permission")
        if owner != app_label:
            raise RegistryError(f"{app_label} may grant only its own permissions, not {perm!r}")


def grant(app_label: str, role: str, permissions) -> None:
    """Give ``role`` these permissions of ``app_label`` (the app's own ``app_label.codename`` only)."""
    permissions = tuple(permissions)
    _check_own(app_label, permissions)
    _registry.grants[str(role)].update(permissions)


def grants(app_label: str, table: dict) -> None:
    """``grant`` for each role of a ``{role: [permission, …]}`` table."""
    for role, permissions in table.items():
        grant(app_label, role, permissions)


def add_nav(entry: NavEntry) -> None:
    if entry.url_name in _registry.nav and _registry.nav[entry.url_name] != entry:
        raise RegistryError(f"navigation entry {entry.url_name!r} is registered twice")
    _registry.nav[entry.url_name] = entry


def add_landing(page: LandingPage) -> None:
    page = replace(page, roles=tuple(str(role) for role in page.roles))  # role enums compare as their values
    if page.url_name in _registry.landing and _registry.landing[page.url_name] != page:
        raise RegistryError(f"landing page {page.url_name!r} is registered twice")
    _registry.landing[page.url_name] = page


def role_permissions(role: str) -> frozenset[str]:
    """Every permission the apps grant ``role``, as "app_label.codename"."""
    return frozenset(_registry.grants.get(str(role), ()))


def granted_roles() -> frozenset[str]:
    """Every role some app grants something to (accounts checks they are all roles it knows)."""
    return frozenset(role for role, permissions in _registry.grants.items() if permissions)


def nav_entries() -> list[NavEntry]:
    return sorted(_registry.nav.values(), key=lambda e: (e.order, e.url_name))


def nav_entries_for(user) -> list[NavEntry]:
    """The entries ``user`` may follow, in order."""
    if not user.is_authenticated:
        return []
    return [e for e in nav_entries() if any(user.has_perm(p) for p in e.permissions)]


def landing_page_for(user, roles) -> str | None:
    """The URL name ``user`` (holding ``roles``) lands on, or None when they may open none of the pages."""
    pages = sorted(_registry.landing.values(), key=lambda p: (p.order, p.url_name))
    roles = {str(r) for r in roles}
    for page in pages:
        if roles.intersection(page.roles):
            return page.url_name
    for page in pages:
        if user.has_perm(page.permission):
            return page.url_name
    return None
