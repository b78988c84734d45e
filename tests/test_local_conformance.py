"""The local provider passes the conformance suite every provider runs."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from multicloud_cv.testing import ProviderConformance


class TestLocalConformance(ProviderConformance):
    provider_name: ClassVar[str] = "local"
    min_accuracy: ClassVar[float] = 0.6
    epochs: ClassVar[int] = 4

    @pytest.fixture(scope="class")
    @classmethod
    def train_hyperparameters(cls) -> dict[str, Any]:
        return {"seed": 0}

    @pytest.fixture(scope="class")
    @classmethod
    def detection_hyperparameters(cls) -> dict[str, Any]:
        return {"max_steps": 6, "batch_size": 4, "seed": 0}
