"""Job and endpoint logs, written where SageMaker writes them: CloudWatch Logs (moto's, here).

Training jobs log to group ``/aws/sagemaker/TrainingJobs``, stream ``<job name>/algo-1-<epoch seconds>``;
endpoints to ``/aws/sagemaker/Endpoints/<endpoint name>``, stream ``<variant>/i-emulator``; transform jobs to
``/aws/sagemaker/TransformJobs``, stream ``<job name>/i-emulator`` (SMDG ``logging-cloudwatch.md`` naming).
Lines are also kept in memory for :meth:`SageMakerEmulator.logs`. Writing to CloudWatch is best effort: a
failure is logged at DEBUG and never fails the job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/{name}"


class LogStream:
    """One CloudWatch log stream plus an in-memory copy of its lines."""

    def __init__(self, client: Any, group: str, stream: str, lines: list[str]) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self.lines = lines
        self._lock = threading.Lock()
        self._ready = False

    def _ensure(self) -> None:
        from botocore.exceptions import ClientError

        if self._ready:
            return
        for call, kwargs in (
            (self.client.create_log_group, {"logGroupName": self.group}),
            (self.client.create_log_stream, {"logGroupName": self.group, "logStreamName": self.stream}),
        ):
            try:
                call(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
        self._ready = True

    def write(self, *lines: str) -> None:
        """Append lines (each also logged at DEBUG)."""
        stamp = int(time.time() * 1000)
        with self._lock:
            self.lines.extend(lines)
            for line in lines:
                log.debug("%s %s: %s", self.group, self.stream, line)
            try:
                self._ensure()
                self.client.put_log_events(
                    logGroupName=self.group,
                    logStreamName=self.stream,
                    logEvents=[{"timestamp": stamp, "message": line} for line in lines],
                )
            except Exception as exc:  # best effort: logs never fail a job
                log.debug("could not write to CloudWatch %s/%s: %s", self.group, self.stream, exc)
