"""Fixtures of the Rekognition tests: a running Rekognition Custom Labels emulator (moto for S3).

Nothing here is autouse: a test asks for ``rekognition_emulator`` (one emulator per test module, started on
127.0.0.1 and stopped after the module, with the bucket :data:`EMULATOR_BUCKET`) or ``rekognition_env``
(the same emulator with the boto3 environment variables applied for the test and its pending faults
cleared afterwards). The emulator's state (projects, datasets, versions, S3 objects) lives for the whole
module: give resources unique names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcv_rekognition.emulator import RekognitionEmulator
from mcv_rekognition.emulator import rekognition_emulator as start_rekognition_emulator

#: The bucket every emulator of these fixtures has.
EMULATOR_BUCKET = "mcv-rekognition-emulator-test"
#: Seconds per state: fast, but each state is still seen by a client polling every few milliseconds.
EMULATOR_PACE = 0.02


@pytest.fixture(scope="module")
def rekognition_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RekognitionEmulator]:
    """A started emulator with the bucket :data:`EMULATOR_BUCKET`, for the whole test module."""
    state = tmp_path_factory.mktemp("rekognition-emulator")
    with start_rekognition_emulator(pace=EMULATOR_PACE, state_dir=state, bucket=EMULATOR_BUCKET) as emulator:
        yield emulator


@pytest.fixture
def rekognition_env(rekognition_emulator: RekognitionEmulator) -> Iterator[RekognitionEmulator]:
    """The module's emulator with its environment applied (boto3 reaches it by default) for one test."""
    with rekognition_emulator.patched_environment():
        try:
            yield rekognition_emulator
        finally:
            rekognition_emulator.reset_faults()
