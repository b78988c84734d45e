"""Fixtures of the Vertex AI tests: a running Vertex AI emulator (and its Cloud Storage) on 127.0.0.1.

Nothing here is autouse: a test asks for ``vertex_emulator`` (one emulator per test module, stopped after the
module, with the bucket :data:`EMULATOR_BUCKET` in the emulator's location) or ``vertex_env`` (the same emulator
with ``STORAGE_EMULATOR_HOST`` and the provider's ``MCV_VERTEX_*`` settings applied for one test, and its pending
faults cleared afterwards). The emulator's state lives for the whole module: give resources unique names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

EMULATOR_BUCKET = "mcv-vertex-emulator-test"
#: Seconds per state: fast, but each state is still seen by a client polling every few milliseconds.
EMULATOR_PACE = 0.02


@pytest.fixture(scope="module")
def vertex_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started emulator with the bucket :data:`EMULATOR_BUCKET`, for the whole test module."""
    from mcv_vertex.emulator import vertex_emulator as start

    state = tmp_path_factory.mktemp("vertex-emulator")
    with start(pace=EMULATOR_PACE, state_dir=state, bucket=EMULATOR_BUCKET) as emulator:
        yield emulator


@pytest.fixture
def vertex_env(vertex_emulator: Any) -> Iterator[Any]:
    """The module's emulator with its environment applied for one test."""
    with vertex_emulator.patched_environment():
        try:
            yield vertex_emulator
        finally:
            vertex_emulator.reset_faults()
