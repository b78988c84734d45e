"""Fixtures of the Custom Vision tests: a running Custom Vision emulator on 127.0.0.1.

Nothing here is autouse: a test asks for ``customvision_emulator`` (one emulator per test module, stopped after the
module) or ``customvision_env`` (the same emulator with the provider's ``MCV_CUSTOMVISION_*`` settings applied to
the environment for one test, and its pending faults cleared afterwards). The emulator's state (projects,
iterations, exports) lives for the whole module: give resources unique names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: Seconds per state: fast, but each state is still seen by a client polling every few milliseconds.
EMULATOR_PACE = 0.02


@pytest.fixture(scope="module")
def customvision_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started emulator (tier S0) for the whole test module."""
    from mcv_customvision.emulator import customvision_emulator as start

    with start(pace=EMULATOR_PACE, state_dir=tmp_path_factory.mktemp("customvision-emulator")) as emulator:
        yield emulator


@pytest.fixture
def customvision_env(customvision_emulator: Any) -> Iterator[Any]:
    """The module's emulator with the provider settings in the environment for one test."""
    with customvision_emulator.patched_environment():
        try:
            yield customvision_emulator
        finally:
            customvision_emulator.reset_faults()
