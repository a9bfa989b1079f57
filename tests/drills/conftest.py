"""Drill tests run the incident engine, which reads only committed rows: the seeded playbooks and error codes are
put back after each flush (the incidents tests' fixture)."""

from tests.incidents.conftest import policies  # noqa: F401 — the fixture
