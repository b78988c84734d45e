"""The Custom Vision emulator as one object: life cycle, keys, settings, faults, call log.

:class:`CustomVisionEmulator` starts, on 127.0.0.1 only, one HTTP server (:mod:`.server`, the kit's
:class:`~multicloud_cv.emulation.server.ServerThread`) answering both the training API and the prediction API
(:mod:`.service`). The real SDK clients reach it with ``endpoint`` and the keys::

    CustomVisionTrainingClient(emu.endpoint, ApiKeyCredentials(in_headers={"Training-key": emu.training_key}))
    CustomVisionPredictionClient(emu.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": emu.prediction_key}))

:meth:`CustomVisionEmulator.provider_settings` gives the ``MCV_CUSTOMVISION_*`` settings that point ``mcv
--provider customvision`` at it; :meth:`CustomVisionEmulator.environment` is empty (the SDK reads no environment
variables) and exists for ``mcv emulate``. ``bucket`` is accepted and ignored (``mcv emulate`` passes one to
every emulator).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcv_customvision.emulator.texts import TRAINING_CATALOGUE
from mcv_customvision.limits import LIMITS
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.lifecycle import LOOPBACK, Lifecycle
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

DEFAULT_PACE = 0.05
"""Seconds per state by default: fast enough for tests; ``mcv emulate`` may slow it down."""

PREDICTION_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mcv-emulated/providers/"
    "Microsoft.CognitiveServices/accounts/mcv-prediction"
)


class CustomVisionEmulator(Lifecycle):
    """A loopback Custom Vision (training v3.4-preview and prediction v3.1 on one port).

    Options: ``host`` (loopback only), ``port`` (0 picks a free one), ``pace`` (seconds per state),
    ``state_dir`` (images, models, exports; a temporary folder removed at stop when not given), ``bucket``
    (ignored), ``tier`` (``F0`` or ``S0``: the project, image and tag caps), ``training_key`` /
    ``prediction_key`` (random hex when not given), and the training caps ``max_epochs`` (2), ``max_steps``
    (6, detection), ``max_image_size`` (64 px) and ``threads`` (1).
    """

    name = "customvision"
    title = "Custom Vision"
    region = "emulated"

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = DEFAULT_PACE,
        state_dir: str | Path | None = None,
        bucket: str | None = None,
        tier: str = "S0",
        training_key: str | None = None,
        prediction_key: str | None = None,
        max_epochs: int = 2,
        max_steps: int = 6,
        max_image_size: int = 64,
        threads: int = 1,
    ) -> None:
        super().__init__(host=host, port=port, pace=pace, state_dir=state_dir, faults=FaultBook(TRAINING_CATALOGUE))
        self.bucket = bucket
        self.tier = LIMITS.tier(tier).name
        self.training_key = training_key or secrets.token_hex(16)
        self.prediction_key = prediction_key or secrets.token_hex(16)
        if self.training_key == self.prediction_key:
            raise ValueError("the training and prediction keys must differ")
        self.prediction_resource_id = PREDICTION_RESOURCE_ID
        self.limits = Limits(max_epochs=max_epochs, max_steps=max_steps, max_image_size=max_image_size, threads=threads)
        self.limits.check()

    # ------------------------------------------------------------------------------------------ life

    def _start(self, stack: contextlib.ExitStack, state_dir: Path) -> None:
        """The service (training and prediction APIs) and its HTTP server."""
        from mcv_customvision.emulator.server import build_app
        from mcv_customvision.emulator.service import CustomVisionService

        self.control = CustomVisionService(
            faults=self.faults,
            closing=self.closing,
            keys={"training": self.training_key, "prediction": self.prediction_key},
            tier=self.tier,
            prediction_resource_id=self.prediction_resource_id,
            state_dir=state_dir,
            pace=self.pace,
            limits=self.limits,
        )
        self._serve(stack, build_app(self.control, self))
        self.control.base_url = f"http://{self.host}:{self.port}"

    def _where(self) -> str:
        return f"{self.endpoint} (tier {self.tier})"

    # ------------------------------------------------------------------------------------- addresses

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the training and the prediction API."""
        self._need()
        return f"http://{self.host}:{self.port}"

    endpoint_url = endpoint

    def environment(self) -> dict[str, str]:
        """No environment variables: the SDK takes the endpoint and keys as arguments (``mcv emulate``)."""
        return {}

    def provider_settings(self) -> dict[str, str]:
        """``MCV_CUSTOMVISION_*`` settings that make ``mcv --provider customvision`` use this emulator."""
        endpoint = self.endpoint
        return {
            "MCV_CUSTOMVISION_TRAINING_ENDPOINT": endpoint,
            "MCV_CUSTOMVISION_TRAINING_KEY": self.training_key,
            "MCV_CUSTOMVISION_PREDICTION_ENDPOINT": endpoint,
            "MCV_CUSTOMVISION_PREDICTION_KEY": self.prediction_key,
            "MCV_CUSTOMVISION_PREDICTION_RESOURCE_ID": self.prediction_resource_id,
            "MCV_CUSTOMVISION_POLL_S": f"{max(0.05, self.pace / 2):g}",
        }

    # ---------------------------------------------------------------------------------------- faults

    def fail_next_iteration(self, reason: str) -> None:
        """The next iteration trained ends ``Failed`` with ``trainingErrorDetails`` = ``reason``."""
        self.faults.fail_next(reason)

    # --------------------------------------------------------------------------------------- inspect

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Calls received, in order: ``{"operation", "method", "path", "query", "status"}``."""
        if self.control is None:
            raise RuntimeError("the Custom Vision emulator is not started")
        result: list[dict[str, Any]] = self.control.calls(operation)
        return result

    def project_ids(self) -> list[str]:
        """The ids of the live projects."""
        if self.control is None:
            return []
        result: list[str] = self.control.project_ids()
        return result


@contextlib.contextmanager
def customvision_emulator(
    pace: float = DEFAULT_PACE,
    state_dir: str | Path | None = None,
    tier: str = "S0",
    **options: Any,
) -> Iterator[CustomVisionEmulator]:
    """Run a :class:`CustomVisionEmulator` for the block; it is stopped when the block ends, even on error."""
    emulator = CustomVisionEmulator(pace=pace, state_dir=state_dir, tier=tier, **options)
    with emulator:
        yield emulator
