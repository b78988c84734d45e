"""Injected faults of the SageMaker emulator: throttling, quota refusals, 5xx, delays, slow states, failed jobs.

A :class:`Fault` applies to the next ``times`` requests of one operation (``None``: any operation,
``InvokeEndpoint`` included) and is used up as it fires. Kinds:

* ``error`` and/or ``status``: the request is answered with that error instead of being served. The
  service's own words are used (pains.md S6, R7): ``ThrottlingException`` (HTTP 400, "Rate exceeded"),
  ``ResourceLimitExceeded`` (HTTP 400, the account-level quota text for the request's instance type),
  ``InternalFailure`` (500), ``ServiceUnavailable`` (503). A bare ``status`` of 5xx picks the matching
  code. With ``after_effect=True`` the request is served first and the error is answered afterwards
  (the resource exists, the client sees a 5xx: a retry then meets ``ResourceInUse``).
* ``delay``: the answer waits this many seconds (client read timeouts).
* ``slow``: the resource the request creates (training job, endpoint, transform job) walks its states at
  ``pace * slow``.

botocore retries ``ThrottlingException`` and HTTP 500/502/503/504 (its ``_retry.json`` and the standard
retry mode), so a few injected faults are absorbed by the client; more than its attempts are not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from mcv_sagemaker.emulator.protocol import ApiError

#: HTTP status of each error code (the JSON protocol puts client errors on 400).
STATUS = {
    "ThrottlingException": 400,
    "ResourceLimitExceeded": 400,
    "ValidationException": 400,
    "ResourceInUse": 400,
    "ResourceNotFound": 400,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "ModelNotReadyException": 429,
    "ValidationError": 400,
    "ModelError": 424,
}

MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "InternalFailure": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "The service is unavailable. Please try again later.",
    "ModelNotReadyException": "Model is not ready to serve requests.",
}


def quota_message(instance_type: str, usage: str, limit: int, current: int, delta: int) -> str:
    """The ResourceLimitExceeded text of the service (pains.md S6)."""
    return (
        f"The account-level service limit '{instance_type} for {usage} usage' is {limit} Instances, with current "
        f"utilization of {current} Instances and a request delta of {delta} Instances. Please use AWS Service "
        "Quotas to request an increase for this quota. If AWS Service Quotas is not available, contact AWS "
        "support to request an increase for this quota."
    )


#: The usage word of each creating operation, for quota texts.
USAGE = {
    "CreateTrainingJob": "training job",
    "CreateEndpoint": "endpoint",
    "CreateTransformJob": "transform job",
}


def request_instances(operation: str, params: dict[str, Any]) -> tuple[str, int]:
    """``(instance type, count)`` a create request asks for (``ml.m5.xlarge``/1 when it names none)."""
    if operation == "CreateTrainingJob":
        config = params.get("ResourceConfig") or {}
        return str(config.get("InstanceType") or "ml.m5.xlarge"), int(config.get("InstanceCount") or 1)
    if operation == "CreateTransformJob":
        config = params.get("TransformResources") or {}
        return str(config.get("InstanceType") or "ml.m5.xlarge"), int(config.get("InstanceCount") or 1)
    return "ml.m5.xlarge", 1


@dataclass
class Fault:
    """One injected fault (see the module docstring)."""

    operation: str | None = None
    error: str | None = None
    status: int | None = None
    message: str | None = None
    times: int = 1
    after_effect: bool = False
    delay: float = 0.0
    slow: float | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError(f"times must be at least 1, got {self.times}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400..599), got {self.status}")
        if self.error is None and self.status is None and not self.delay and self.slow is None:
            raise ValueError("a fault needs error=, status=, delay= or slow=")
        if self.slow is not None and self.slow <= 0:
            raise ValueError(f"slow must be a positive factor, got {self.slow}")
        if self.delay < 0:
            raise ValueError(f"delay must not be negative, got {self.delay}")

    @property
    def raises(self) -> bool:
        """True when the fault answers an error."""
        return self.error is not None or self.status is not None

    def api_error(self, operation: str, params: dict[str, Any]) -> ApiError:
        """The error this fault answers to ``operation``."""
        status = self.status
        code = self.error
        if code is None:
            code = {500: "InternalFailure", 503: "ServiceUnavailable", 429: "ThrottlingException"}.get(
                int(status or 500), "InternalFailure" if (status or 500) >= 500 else "ValidationException"
            )
        if status is None:
            status = STATUS.get(code, 400)
        message = self.message
        if message is None and code == "ResourceLimitExceeded":
            instance_type, count = request_instances(operation, params)
            message = quota_message(instance_type, USAGE.get(operation, "training job"), 0, 0, count)
        if message is None:
            message = MESSAGES.get(code, f"Injected fault: {code}")
        return ApiError(code, message, status=status)


class FaultBook:
    """The pending faults, thread-safe; each fires for its operation until its ``times`` are used up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._failures: list[str] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault (faults fire in the order added)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault and queued job failure."""
        with self._lock:
            self._faults.clear()
            self._failures.clear()

    def take(self, operation: str, after_effect: bool) -> Fault | None:
        """The first pending fault for ``operation`` of the given timing, used once (``None`` when none)."""
        with self._lock:
            for fault in self._faults:
                if fault.operation not in (None, operation):
                    continue
                if fault.slow is not None and not fault.raises and not fault.delay:
                    continue  # slow-state faults are taken by take_slow
                if fault.raises and fault.after_effect != after_effect:
                    continue
                if not fault.raises and after_effect:
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def take_slow(self, operation: str) -> float:
        """The pace factor for the resource ``operation`` creates (1.0 when no slow fault is pending)."""
        with self._lock:
            for fault in self._faults:
                if fault.operation in (None, operation) and fault.slow is not None and not fault.raises:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return float(fault.slow)
        return 1.0

    def fail_next_training_job(self, reason: str) -> None:
        """The next training job created walks to ``Failed`` with this ``FailureReason``."""
        with self._lock:
            self._failures.append(reason)

    def next_training_failure(self) -> str | None:
        """The queued failure for a job being created, used once."""
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def pending(self) -> list[Fault]:
        """A copy of the pending faults (for the admin route and tests)."""
        with self._lock:
            return [Fault(**vars(f)) for f in self._faults]
