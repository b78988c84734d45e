"""The Rekognition emulator as one object: moto (S3 and every other AWS service) plus Rekognition Custom Labels.

:class:`RekognitionEmulator` is a :class:`multicloud_cv.emulation.aws.AwsEmulator` (life cycle, environment,
clients, buckets, faults). It starts, on 127.0.0.1 only, moto's server (S3 holds the images, manifests and
the training output, as the customer's bucket does for the real service) and the emulated Custom Labels
API (:mod:`.control`) on one port.

boto3 reaches both through :meth:`RekognitionEmulator.environment`: ``AWS_ENDPOINT_URL`` (moto) and
``AWS_ENDPOINT_URL_REKOGNITION`` (the emulator; botocore's service id is ``Rekognition``), dummy
credentials (``testing``; not secrets) and the region. :meth:`RekognitionEmulator.provider_settings` gives
the ``MCV_REKOGNITION_*`` settings that point ``mcv --provider rekognition`` at it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcv_rekognition.emulator.texts import CATALOGUE
from multicloud_cv.emulation.aws import DEFAULT_REGION, LOOPBACK, S3, AwsEmulator
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.training import Limits

DEFAULT_PACE = 0.05
"""Seconds per state by default: fast enough for tests; ``mcv emulate`` may slow it down."""


class RekognitionEmulator(AwsEmulator):
    """A loopback Rekognition Custom Labels with moto for S3 and every other AWS service.

    Use as a context manager (or :meth:`start` / :meth:`stop`)::

        with RekognitionEmulator(pace=0.02, bucket="bkt") as emu:
            rek = emu.client("rekognition")      # or boto3 with emu.environment() applied

    Options: ``host`` (loopback only), ``port`` (0 picks a free one), ``pace`` (seconds per state),
    ``state_dir`` (work files: image cache, models; a temporary folder, removed at stop, when not given),
    ``bucket`` (created at start), ``region``, and the training caps ``max_epochs`` (3), ``max_steps`` (8,
    localization), ``max_image_size`` (64 px) and ``threads`` (1 CPU thread per training and per model).
    """

    name = "rekognition"
    title = "Rekognition"
    own_services = ("rekognition",)
    own_variables = ("AWS_ENDPOINT_URL_REKOGNITION",)

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = DEFAULT_PACE,
        state_dir: str | Path | None = None,
        bucket: str | None = None,
        region: str = DEFAULT_REGION,
        max_epochs: int = 3,
        max_steps: int = 8,
        max_image_size: int = 64,
        threads: int = 1,
    ) -> None:
        super().__init__(host=host, port=port, pace=pace, state_dir=state_dir, bucket=bucket, region=region)
        self.limits = Limits(max_epochs=max_epochs, max_steps=max_steps, max_image_size=max_image_size, threads=threads)
        self.limits.check()

    def _make_faults(self) -> FaultBook:
        return FaultBook(CATALOGUE)

    def _build_service(self, s3: S3, state_dir: Path) -> Any:
        from mcv_rekognition.emulator.control import RekognitionService

        return RekognitionService(self.region, s3, state_dir, self.pace, self.limits, self.faults, self.closing)

    def _build_app(self, service: Any) -> Any:
        from mcv_rekognition.emulator.server import build_app

        return build_app(service, self)

    def provider_settings(self) -> dict[str, str]:
        """``MCV_REKOGNITION_*`` settings that make ``mcv --provider rekognition`` work against this emulator as
        is: its region, the bucket made at start (if any) and a poll interval matched to the pace."""
        values = {
            "MCV_REKOGNITION_REGION": self.region,
            "MCV_REKOGNITION_POLL_S": f"{max(0.05, self.pace / 2):g}",
        }
        if self.bucket:
            values["MCV_REKOGNITION_BUCKET"] = self.bucket
        return values

    def fail_next_version(self, status_message: str) -> None:
        """The next model version created ends ``TRAINING_FAILED`` with this ``StatusMessage``."""
        self.faults.fail_next(status_message)


@contextlib.contextmanager
def rekognition_emulator(
    pace: float = DEFAULT_PACE,
    state_dir: str | Path | None = None,
    bucket: str | None = None,
    **options: Any,
) -> Iterator[RekognitionEmulator]:
    """Run a :class:`RekognitionEmulator` for the block; it is stopped when the block ends, even on error."""
    emulator = RekognitionEmulator(pace=pace, state_dir=state_dir, bucket=bucket, **options)
    with emulator:
        yield emulator
