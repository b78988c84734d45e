"""Fixtures of the SageMaker tests: a running SageMaker emulator (moto for S3, IAM, logs ...).

Nothing here is autouse: a test asks for ``sagemaker_emulator`` (one emulator per test module, started
on 127.0.0.1 and stopped after the module) or ``sagemaker_env`` (the same emulator with the boto3
environment variables applied for the test and its pending faults cleared afterwards). The emulator
state (jobs, endpoints, S3 objects) lives for the whole module: give resources unique names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcv_sagemaker.emulator import SageMakerEmulator
from mcv_sagemaker.emulator import sagemaker_emulator as start_sagemaker_emulator

#: The bucket every emulator of these fixtures has.
EMULATOR_BUCKET = "mcv-emulator-test"
#: Seconds per state: fast, but each state is still seen by a client polling every few milliseconds.
EMULATOR_PACE = 0.02


@pytest.fixture(scope="module")
def sagemaker_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SageMakerEmulator]:
    """A started emulator with the bucket :data:`EMULATOR_BUCKET`, for the whole test module."""
    state = tmp_path_factory.mktemp("sagemaker-emulator")
    with start_sagemaker_emulator(pace=EMULATOR_PACE, state_dir=state, bucket=EMULATOR_BUCKET) as emulator:
        yield emulator


@pytest.fixture
def sagemaker_env(sagemaker_emulator: SageMakerEmulator) -> Iterator[SageMakerEmulator]:
    """The module's emulator with its environment applied (boto3 reaches it by default) for one test."""
    with sagemaker_emulator.patched_environment():
        try:
            yield sagemaker_emulator
        finally:
            sagemaker_emulator.reset_faults()
