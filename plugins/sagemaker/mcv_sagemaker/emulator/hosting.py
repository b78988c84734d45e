"""Endpoints and batch transform in the emulator: the state walks and the work behind them.

* Endpoint (cloud-apis.md 1.3): ``Creating`` -> ``InService`` once the model of the first production variant
  is downloaded and loaded (at least ``pace`` seconds), or ``Failed`` with the service's FailureReason
  (:mod:`.serving`); ``Deleting`` -> gone after ``pace`` seconds (then DescribeEndpoint raises
  ``ValidationException``, which botocore's ``EndpointDeleted`` waiter expects).
* Transform job: ``InProgress`` -> ``Completed``: every object under ``TransformInput.DataSource.
  S3DataSource.S3Uri`` is answered as InvokeEndpoint would answer it (``TransformInput.ContentType``,
  ``TransformOutput.Accept``) and written to ``<S3OutputPath>/<key relative to the input prefix>.out``.
  A payload the container refuses fails the job with the service's "ClientError: See job logs for more
  information." (the detail goes to the job's log). StopTransformJob: ``Stopping`` -> ``Stopped``.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mcv_sagemaker.emulator.serving import JSON, LoadFailure, ModelFailure, load_model, output_key
from mcv_sagemaker.emulator.store import Endpoint, Model, Store, TransformJob, now
from multicloud_cv.emulation.aws import S3, split_uri

if TYPE_CHECKING:
    from mcv_sagemaker.emulator.logs import LogStream

log = logging.getLogger(__name__)


def _pause(seconds: float, *events: threading.Event) -> bool:
    """Wait ``seconds``; True when one of ``events`` was set meanwhile (stop early)."""
    deadline = time.monotonic() + seconds
    while True:
        if any(event.is_set() for event in events):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.05))


class EndpointRunner:
    """Brings an endpoint up (thread target :meth:`create`) or down (:meth:`delete`)."""

    def __init__(
        self,
        endpoint: Endpoint,
        model: Model,
        s3: S3,
        store: Store,
        workdir: Path,
        log_stream: LogStream,
        closing: threading.Event,
        threads: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.model = model
        self.s3 = s3
        self.store = store
        self.workdir = workdir
        self.logs = log_stream
        self.closing = closing
        self.threads = threads
        self.deleting = threading.Event()

    def create(self) -> None:
        """Load the model and go InService, or Failed; never raises."""
        endpoint = self.endpoint
        started = time.monotonic()
        try:
            served = load_model(
                self.model.container,
                self.s3,
                self.workdir / "model",
                endpoint.variant_name,
                self.store.region,
                self.threads,
            )
        except LoadFailure as failure:
            if failure.detail:
                self.logs.write(f"Model load failed: {failure.detail}")
            if not self.deleting.is_set():
                _pause(max(0.0, endpoint.pace - (time.monotonic() - started)), self.closing, self.deleting)
                if not self.deleting.is_set():
                    endpoint.set_status("Failed", failure.reason)
            return
        except Exception as exc:  # never leave an endpoint Creating forever
            log.debug("endpoint %s failed to load", endpoint.name, exc_info=True)
            self.logs.write(f"Model load failed: {exc}")
            endpoint.set_status(
                "Failed", "Request to service failed. If failure persists after retry, contact customer support."
            )
            return
        self.logs.write(f"Model loaded: {self.model.container.get('ModelDataUrl')} ({served.algorithm})")
        if _pause(max(0.0, endpoint.pace - (time.monotonic() - started)), self.closing, self.deleting):
            return
        with endpoint.lock:
            if endpoint.status == "Creating":
                endpoint.served = served
                endpoint.image = str(self.model.container.get("Image") or "")
                endpoint.set_status("InService")
        self.logs.write("Endpoint is InService")

    def delete(self) -> None:
        """Walk Deleting -> gone."""
        self.deleting.set()
        endpoint = self.endpoint
        endpoint.set_status("Deleting")
        with endpoint.lock:
            endpoint.served = None
        _pause(endpoint.pace, self.closing)
        with self.store.lock:
            if self.store.get("endpoint", endpoint.name) is endpoint:
                self.store.remove("endpoint", endpoint.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


class TransformRunner:
    """Runs one batch transform job (thread target :meth:`run`)."""

    def __init__(
        self,
        job: TransformJob,
        model: Model,
        s3: S3,
        region: str,
        workdir: Path,
        log_stream: LogStream,
        closing: threading.Event,
        threads: int = 1,
    ) -> None:
        self.job = job
        self.model = model
        self.s3 = s3
        self.region = region
        self.workdir = workdir
        self.logs = log_stream
        self.closing = closing
        self.threads = threads

    def run(self) -> None:
        """Transform every input object, then Completed (or Failed, Stopped); never raises."""
        job = self.job
        try:
            self._run()
        except Exception as exc:  # the job's last word
            log.debug("transform job %s failed", job.name, exc_info=True)
            self.logs.write(f"{type(exc).__name__}: {exc}")
            job.set_status("Failed", "AlgorithmError: See job logs for more information")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_now(self) -> bool:
        if self.job.stop.is_set() or self.closing.is_set():
            _pause(self.job.pace, self.closing)
            self.job.set_status("Stopped")
            return True
        return False

    def _run(self) -> None:
        job = self.job
        started = time.monotonic()
        if _pause(job.pace, job.stop, self.closing) and self._stop_now():
            return
        with job.lock:
            job.start = now()
        try:
            served = load_model(
                self.model.container, self.s3, self.workdir / "model", "AllTraffic", self.region, self.threads
            )
        except LoadFailure as failure:
            self.logs.write(f"Model load failed: {failure.detail or failure.reason}")
            job.set_status("Failed", f"ClientError: {failure.reason}")
            return
        source = job.request["TransformInput"]["DataSource"]["S3DataSource"]
        content_type = str(job.request["TransformInput"].get("ContentType") or "")
        accept = str(job.request["TransformOutput"].get("Accept") or JSON)
        output = str(job.request["TransformOutput"]["S3OutputPath"]).rstrip("/")
        out_bucket, out_prefix = split_uri(output + "/")
        bucket, prefix = split_uri(str(source["S3Uri"]))
        count = 0
        for key, _size in self.s3.list(bucket, prefix):
            if self._stop_now():
                return
            body = self.s3.get(bucket, key)
            try:
                answer, answer_type = served.answer(body, content_type, accept)
            except ModelFailure as failure:
                self.logs.write(f"s3://{bucket}/{key}: the model answered {failure.status}: {failure.message}")
                job.set_status("Failed", "ClientError: See job logs for more information")
                return
            self.s3.put(out_bucket, out_prefix + output_key(prefix, key), answer, answer_type)
            count += 1
        self.logs.write(f"Transformed {count} objects into {output}/")
        if _pause(max(0.0, job.pace - (time.monotonic() - started)), job.stop, self.closing) and self._stop_now():
            return
        job.set_status("Completed")
