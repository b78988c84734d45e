"""The Vertex AI emulator as one object: life cycle, Cloud Storage beside it, settings, faults, inspection.

:class:`VertexEmulator` starts, on 127.0.0.1 only, gcp-storage-emulator in this process (in memory, the default
bucket created in the emulator's location) and one HTTP server (:mod:`.server`) speaking Vertex AI's v1 REST API
(:mod:`.service`). :meth:`~VertexEmulator.provider_settings` gives the ``MCV_VERTEX_*`` settings that point
``mcv --provider vertex`` at it, :meth:`~VertexEmulator.environment` ``STORAGE_EMULATOR_HOST``. ``mcv emulate
vertex`` builds it as ``cls(port=, pace=, state_dir=, bucket=)``.

Buckets: ``create_bucket(name, location=...)`` records a location; buckets a client creates through the GCS API
are recorded by gcp-storage-emulator as multi-region ``US`` (it ignores the requested location), so a job whose
output goes there fails the region check unless :meth:`~VertexEmulator.create_bucket` set its location.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcv_vertex.emulator.texts import CATALOGUE
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.lifecycle import LOOPBACK, Lifecycle
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

DEFAULT_PACE = 0.05
"""Seconds per state by default: fast enough for tests; ``mcv emulate`` may slow it down."""
DEFAULT_BUCKET = "mcv-emulated"
KINDS = ("customJobs", "trainingPipelines", "datasets", "models", "endpoints", "batchPredictionJobs")


class VertexEmulator(Lifecycle):
    """A loopback Vertex AI (v1 REST) with its Cloud Storage.

    Options: ``host`` (loopback only), ``port`` (0 picks a free one), ``pace`` (seconds per state), ``state_dir``
    (dataset copies, models, job logs; a temporary folder removed at stop when not given), ``bucket`` (created
    at start in ``location``), ``project``, ``location``, the training caps ``max_epochs`` (2), ``max_steps`` (6,
    detection), ``max_image_size`` (64 px), ``threads`` (1), and ``job_timeout`` (seconds a custom job's process
    may run).
    """

    name = "vertex"
    title = "Vertex AI"

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = DEFAULT_PACE,
        state_dir: str | Path | None = None,
        bucket: str | None = None,
        project: str = "mcv-emulated",
        location: str = "us-central1",
        max_epochs: int = 2,
        max_steps: int = 6,
        max_image_size: int = 64,
        threads: int = 1,
        job_timeout: float = 900.0,
    ) -> None:
        super().__init__(host=host, port=port, pace=pace, state_dir=state_dir, faults=FaultBook(CATALOGUE))
        self.bucket = bucket or DEFAULT_BUCKET
        self.project = project
        self.location = location
        self.limits = Limits(max_epochs=max_epochs, max_steps=max_steps, max_image_size=max_image_size, threads=threads)
        self.limits.check()
        self.job_timeout = float(job_timeout)
        self.storage: Any = None
        self._gcs: Any = None

    @property
    def region(self) -> str:
        """The location (the kit's admin routes report it)."""
        return self.location

    # ------------------------------------------------------------------------------------------ life

    def _start(self, stack: contextlib.ExitStack, state_dir: Path) -> None:
        """Cloud Storage (and the bucket), then the Vertex AI service and its HTTP server."""
        from mcv_vertex.emulator.gcs import Storage
        from mcv_vertex.emulator.server import build_app
        from mcv_vertex.emulator.service import VertexService
        from multicloud_cv.testing.emulators import gcs_emulator

        self._gcs = stack.enter_context(gcs_emulator())
        self.storage = Storage(self._gcs.endpoint_url, self.project, self._gcs.server)
        self.storage.create_bucket(self.bucket, self.location)
        self.control = VertexService(
            faults=self.faults,
            project=self.project,
            location=self.location,
            storage=self.storage,
            state_dir=state_dir,
            pace=self.pace,
            limits=self.limits,
            closing=self.closing,
            job_timeout=self.job_timeout,
        )
        self._serve(stack, build_app(self.control, self))

    def _where(self) -> str:
        return f"{self.endpoint} (GCS {self.gcs_endpoint})"

    # ------------------------------------------------------------------------------------- addresses

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: Vertex AI's v1 REST API (``client_options={"api_endpoint": ...}``)."""
        self._need()
        return f"http://{self.host}:{self.port}"

    endpoint_url = endpoint

    @property
    def gcs_endpoint(self) -> str:
        """``http://127.0.0.1:PORT2``: the Cloud Storage emulator (``STORAGE_EMULATOR_HOST``)."""
        self._need()
        return str(self._gcs.endpoint_url)

    def environment(self) -> dict[str, str]:
        """``STORAGE_EMULATOR_HOST`` (google-cloud-storage and gcsfs honour it)."""
        return {"STORAGE_EMULATOR_HOST": self.gcs_endpoint}

    def provider_settings(self) -> dict[str, str]:
        """``MCV_VERTEX_*`` settings that make ``mcv --provider vertex`` use this emulator."""
        return {
            "MCV_VERTEX_PROJECT": self.project,
            "MCV_VERTEX_LOCATION": self.location,
            "MCV_VERTEX_BUCKET": self.bucket,
            "MCV_VERTEX_API_ENDPOINT": self.endpoint,
            "MCV_VERTEX_POLL_S": "0.05",
        }

    def create_bucket(self, name: str, location: str | None = None) -> None:
        """Create a Cloud Storage bucket in ``location`` (default: the emulator's; ``US``/``EU``: multi-region)."""
        self._need()
        self.storage.create_bucket(name, location or self.location)

    # ---------------------------------------------------------------------------------------- faults

    def set_quota(self, metric: str, region: str, value: int) -> None:
        """The limit the Cloud Quotas API reports for ``metric`` in ``region`` (``0``: none; ``-1``: unlimited)."""
        self._need()
        self.control.quotas.set(metric, region, value)

    def fail_next_job(self, message: str, code: int = 13) -> None:
        """The next custom job, batch prediction job or training pipeline created ends FAILED with the
        ``google.rpc.Status`` ``{code, message}`` (8: RESOURCE_EXHAUSTED, 13: INTERNAL ...)."""
        self._need()
        self.control.fail_next(message, int(code))

    def reset_faults(self) -> None:
        """Forget pending faults and queued job failures."""
        self.faults.clear()
        if self.control is not None:
            with self.control.lock:
                self.control.failures.clear()

    # --------------------------------------------------------------------------------------- inspect

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Calls received, in order: ``{"operation", "method", "path", "status"}`` (RPC names)."""
        self._need()
        result: list[dict[str, Any]] = self.control.calls(operation)
        return result

    def resources(self, kind: str) -> list[str]:
        """Names of the live resources of ``kind``: customJobs, trainingPipelines, datasets, models, endpoints or
        batchPredictionJobs."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if self.control is None:
            return []
        result: list[str] = self.control.resources(kind)
        return result


@contextlib.contextmanager
def vertex_emulator(
    pace: float = DEFAULT_PACE,
    state_dir: str | Path | None = None,
    bucket: str | None = None,
    project: str = "mcv-emulated",
    location: str = "us-central1",
    **options: Any,
) -> Iterator[VertexEmulator]:
    """Run a :class:`VertexEmulator` for the block; it is stopped when the block ends, even on error."""
    emulator = VertexEmulator(
        pace=pace, state_dir=state_dir, bucket=bucket, project=project, location=location, **options
    )
    with emulator:
        yield emulator
