"""SageMaker's words for injected faults: throttling, quota refusals, 5xx, delays, slow states, failed jobs.

The fault machinery (:class:`Fault`, the fault book, after-effect errors, delays, slow resources) is the
shared :mod:`multicloud_cv.emulation.faults`; this module gives it SageMaker's error catalogue
(pains.md S6, R7): ``ThrottlingException`` (HTTP 400, "Rate exceeded"), ``ResourceLimitExceeded`` (HTTP
400, the account-level quota text for the request's instance type), ``InternalFailure`` (500),
``ServiceUnavailable`` (503). A bare ``status`` of 5xx picks the matching code, 429 throttling. With
``after_effect=True`` the request is served first and the error is answered afterwards (the resource
exists, the client sees a 5xx: a retry then meets ``ResourceInUse``). ``slow`` applies to training jobs,
endpoints and transform jobs.
"""

from __future__ import annotations

from typing import Any

from multicloud_cv.emulation import faults as kit
from multicloud_cv.emulation.faults import Fault

__all__ = [
    "CATALOGUE",
    "MESSAGES",
    "STATUS",
    "USAGE",
    "Fault",
    "FaultBook",
    "quota_message",
    "request_instances",
]

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


def _describe(code: str, operation: str, params: dict[str, Any]) -> str | None:
    if code != "ResourceLimitExceeded":
        return None
    instance_type, count = request_instances(operation, params)
    return quota_message(instance_type, USAGE.get(operation, "training job"), 0, 0, count)


CATALOGUE = kit.ErrorCatalogue(
    status=STATUS,
    messages=MESSAGES,
    by_status={500: "InternalFailure", 503: "ServiceUnavailable", 429: "ThrottlingException"},
    server_default="InternalFailure",
    client_default="ValidationException",
    describe=_describe,
)
"""How SageMaker words an injected error."""


class FaultBook(kit.FaultBook):
    """The shared fault book with SageMaker's catalogue and its training-job failure queue."""

    def __init__(self) -> None:
        super().__init__(CATALOGUE)

    def fail_next_training_job(self, reason: str) -> None:
        """The next training job created walks to ``Failed`` with this ``FailureReason``."""
        self.fail_next(reason)

    def next_training_failure(self) -> str | None:
        """The queued failure for a job being created, used once."""
        return self.next_failure()
