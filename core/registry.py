"""What each app plugs into the console: the permissions it grants each role, its navigation entries and its
landing pages.

Apps register here from their ``AppConfig.ready``; core names no app and no role. accounts reads the grants to
keep the role groups in step (``accounts.services.roles_sync``, run after every migrate), the landing view reads
the landing pages, and the console's navigation (``core_console.console_nav``) reads the entries. A new app
plugs in by registering, without editing accounts or the base template.

Kiosk annotators (``register_kiosk_annotator``) let an app above fleet add a line to kiosks where fleet lists them
(the board's problem rows: a kiosk's open incident), without fleet naming that app.

Out-of-service texts (``register_out_of_service_text``) let an app above incidents say what a kiosk's
out-of-service screen tells citizens (the alternatives: other kiosks, the counter, the online platform), so that
incidents can queue the screen with its words without naming that app (guidance registers one).

Incident panels (``register_incident_panel``) let an app above incidents add a card to the incident page (the
incident's work order), without incidents naming that app; incident markers (``register_incident_marker``) a
line to the incident queue's rows the same way.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from django.db import transaction

log = logging.getLogger(__name__)


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
    kiosk_annotators: list = field(default_factory=list)
    out_of_service_texts: list = field(default_factory=list)
    incident_panels: list = field(default_factory=list)
    incident_markers: list = field(default_factory=list)


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


# --- Kiosk annotators -----------------------------------------------------------------------------------

# An annotator takes kiosk ids and returns {kiosk_id: {"label": str, "url": str, "severity": str}} for the kiosks it
# has something to say about (kiosks it leaves out get nothing). It is called once per page with every kiosk the page
# lists, so it must answer with a fixed number of queries whatever their number.
KioskAnnotator = Callable[[list[int]], dict[int, dict]]

# What an annotation carries: the words shown (already in the reader's language), where they lead, and a severity
# the page shows as a colour ("critical", "warning", "info", or anything else for a neutral one).
ANNOTATION_KEYS = ("label", "url", "severity")


def register_kiosk_annotator(annotator: KioskAnnotator) -> None:
    """Add ``annotator`` to the kiosk lists fleet renders (the board's problem rows); registering it again does
    nothing, so an ``AppConfig.ready`` that runs twice is harmless. The incidents app, for one, registers the open
    incident of each kiosk."""
    if not callable(annotator):
        raise RegistryError(f"{annotator!r} is not callable")
    if annotator not in _registry.kiosk_annotators:
        _registry.kiosk_annotators.append(annotator)


def unregister_kiosk_annotator(annotator: KioskAnnotator) -> None:
    """Take an annotator back out (tests, and an app that turns its annotations off)."""
    if annotator in _registry.kiosk_annotators:
        _registry.kiosk_annotators.remove(annotator)


def kiosk_annotations(kiosk_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Every registered annotator's annotations of these kiosks, in registration order: {kiosk_id: [{"label",
    "url", "severity"}, …]}. An annotator that fails, or answers with something malformed, is logged and left out:
    the fleet's own view of the kiosks must not go dark because an app above it broke."""
    kiosk_ids = list(dict.fromkeys(kiosk_ids))
    annotations: dict[int, list[dict]] = defaultdict(list)
    if not kiosk_ids:
        return {}
    wanted = set(kiosk_ids)
    for annotator in list(_registry.kiosk_annotators):
        try:
            answer = annotator(kiosk_ids) or {}
            rows = [(kiosk_id, _annotation(note)) for kiosk_id, note in answer.items() if kiosk_id in wanted]
        except Exception:  # noqa: BLE001 — see the docstring: one broken annotator must not break the page
            log.exception("kiosk annotator %r failed", annotator)
            continue
        for kiosk_id, note in rows:
            annotations[kiosk_id].append(note)
    return dict(annotations)


def _annotation(note) -> dict:
    if not isinstance(note, dict) or not isinstance(note.get("label"), str) or not note["label"]:
        raise RegistryError(f"an annotation needs a non-empty 'label': {note!r}")
    return {"label": note["label"], "url": str(note.get("url") or ""), "severity": str(note.get("severity") or "")}


# --- Out-of-service texts -------------------------------------------------------------------------------

# A text provider takes a kiosk (fleet.Kiosk) and returns the out-of-service screen's params:
# {"message": str, "alternatives": {...}} (docs/device-protocol.md), or {} when it has nothing to say.
OutOfServiceText = Callable[[object], dict]


def register_out_of_service_text(provider: OutOfServiceText) -> None:
    """Let ``provider`` fill the out-of-service screen's params where a command is queued without a message;
    registering it again does nothing. The guidance app registers the citizens' alternatives."""
    if not callable(provider):
        raise RegistryError(f"{provider!r} is not callable")
    if provider not in _registry.out_of_service_texts:
        _registry.out_of_service_texts.append(provider)


def unregister_out_of_service_text(provider: OutOfServiceText) -> None:
    if provider in _registry.out_of_service_texts:
        _registry.out_of_service_texts.remove(provider)


def out_of_service_params(kiosk) -> dict:
    """The out-of-service screen's params for ``kiosk`` from the first provider that answers, or {} (the kiosk then
    shows its own default screen). A provider that fails is logged and skipped: taking a kiosk out of service must
    not fail because the words for it could not be found."""
    for provider in list(_registry.out_of_service_texts):
        try:
            params = provider(kiosk)
        except Exception:  # noqa: BLE001 — see the docstring
            log.exception("out-of-service text provider %r failed", provider)
            continue
        if isinstance(params, dict) and params.get("message"):
            return dict(params)
    return {}


# --- Incident panels ------------------------------------------------------------------------------------

# A panel takes an incident (incidents.Incident) and the user reading its page, and returns the HTML of a card for
# the page's side column (already rendered, in the reader's language), or None when it has nothing to show.
IncidentPanel = Callable[[object, object], str | None]


def register_incident_panel(panel: IncidentPanel) -> None:
    """Add ``panel`` to the incident page, so that an app above incidents shows what it holds of the incident (the
    workorders app: the incident's work order, or the button that dispatches one) without incidents naming that
    app; registering it again does nothing."""
    if not callable(panel):
        raise RegistryError(f"{panel!r} is not callable")
    if panel not in _registry.incident_panels:
        _registry.incident_panels.append(panel)


def unregister_incident_panel(panel: IncidentPanel) -> None:
    if panel in _registry.incident_panels:
        _registry.incident_panels.remove(panel)


def incident_panels(incident, user) -> list[str]:
    """The HTML of every registered panel that has something to show on ``incident``'s page for ``user``, in
    registration order. A panel that fails is logged and left out: the incident page must not go dark because an
    app above incidents broke."""
    panels = []
    for panel in list(_registry.incident_panels):
        try:
            # In a savepoint: a query of the panel that fails must not abort the page's own transaction.
            with transaction.atomic():
                html = panel(incident, user)
        except Exception:  # noqa: BLE001 — see the docstring
            log.exception("incident panel %r failed", panel)
            continue
        if html:
            panels.append(html)
    return panels


# --- Incident markers -----------------------------------------------------------------------------------

# A marker provider takes incident ids (one page of the incident queue) and returns {incident_id: {"label": str,
# "url": str, "severity": str}} for the incidents it has something to say about, in a fixed number of queries
# whatever their number (the work-orders app: the incident's active work order).
IncidentMarker = Callable[[list[int]], dict[int, dict]]


def register_incident_marker(provider: IncidentMarker) -> None:
    """Add ``provider`` to the incident queue's rows; registering it again does nothing."""
    if not callable(provider):
        raise RegistryError(f"{provider!r} is not callable")
    if provider not in _registry.incident_markers:
        _registry.incident_markers.append(provider)


def unregister_incident_marker(provider: IncidentMarker) -> None:
    if provider in _registry.incident_markers:
        _registry.incident_markers.remove(provider)


def incident_markers(incident_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Every registered provider's markers of these incidents: {incident_id: [{"label", "url", "severity"}, …]}. A
    provider that fails, or answers with something malformed, is logged and left out (the queue stays up)."""
    incident_ids = list(dict.fromkeys(incident_ids))
    if not incident_ids:
        return {}
    wanted = set(incident_ids)
    markers: dict[int, list[dict]] = defaultdict(list)
    for provider in list(_registry.incident_markers):
        try:
            answer = provider(incident_ids) or {}
            rows = [(incident_id, _annotation(note)) for incident_id, note in answer.items() if incident_id in wanted]
        except Exception:  # noqa: BLE001 — see the docstring
            log.exception("incident marker provider %r failed", provider)
            continue
        for incident_id, note in rows:
            markers[incident_id].append(note)
    return dict(markers)
