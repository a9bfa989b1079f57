"""Apps depend downward only: core ← accounts ← fleet ← (incidents, reconciliation) ← (workorders, guidance).

A lower layer neither imports a higher one nor points a relation at its models, so each can be read, tested and
migrated without the ones above it. Migrations are history and are left out: accounts.0001 still names fleet."""

import ast
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
LAYER = {
    "core": 0,
    "accounts": 1,
    "fleet": 2,
    "incidents": 3,
    "reconciliation": 3,
    "parts": 3,
    "workorders": 4,
    "guidance": 4,
    "inspections": 5,
    "drills": 5,
    "analytics": 9,
}


def imported_apps(app: str) -> set[tuple[str, str]]:
    """(module, app imported) for every import of another KioskOps app in ``app``'s code."""
    found = set()
    for path in (ROOT / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top in LAYER and top != app:
                    found.add((str(path.relative_to(ROOT)), top))
    return found


@pytest.mark.parametrize("app", list(LAYER))
def test_an_app_imports_only_the_apps_below_it(app):
    upward = {(module, other) for module, other in imported_apps(app) if LAYER[other] >= LAYER[app]}

    assert not upward, f"{app} imports from its own layer or above: {sorted(upward)}"


@pytest.mark.parametrize("app", [label for label in LAYER if label != "core"])
def test_an_apps_models_point_only_at_models_of_the_apps_below_it(app):
    upward = [
        f"{model.__name__}.{field.name} → {field.related_model._meta.label}"
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.get_fields()
        if field.is_relation
        and not field.auto_created
        and field.related_model._meta.app_label in LAYER
        and field.related_model._meta.app_label != app
        and LAYER[field.related_model._meta.app_label] >= LAYER[app]
    ]

    assert not upward, f"{app}'s models point upward: {upward}"
