"""The emulated account's resources: training jobs, models, endpoint configs, endpoints, transform jobs, tags.

State is in memory, guarded by one lock (:attr:`Store.lock`); runner threads change a resource only
through its methods, which take that lock. Names are unique per kind, as in the service; ARNs follow
``arn:aws:sagemaker:<region>:<account>:<kind>/<name>`` with the name lower-cased, as SageMaker writes them.
Timestamps are epoch seconds here and become datetimes in responses.

Secondary statuses and their messages follow ``DescribeTrainingJobResponse.SecondaryStatus`` in botocore's
model and what the service shows (cloud-apis.md 1.3): Starting "Preparing the instances for training",
Downloading "Downloading input data", Training "Training image download completed. Training in progress.",
Uploading "Uploading generated training model", Completed "Training job completed", Failed "Training job
failed", Stopping "Stopping the training job", Stopped "Training job stopped", MaxRuntimeExceeded.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mcv_sagemaker.emulator.protocol import timestamp, validation_error
from multicloud_cv.emulation.aws import ACCOUNT

__all__ = ["ACCOUNT", "Endpoint", "EndpointConfig", "Model", "Store", "TrainingJob", "TransformJob", "now", "page"]

STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: MaxRuntimeInSeconds exceeded",
}

#: Request members echoed by DescribeTrainingJob (the rest of its output is state).
TRAINING_ECHO = (
    "TuningJobArn",
    "LabelingJobArn",
    "AutoMLJobArn",
    "HyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "WarmPoolStatus",
    "VpcConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "DebugHookConfig",
    "ExperimentConfig",
    "DebugRuleConfigurations",
    "TensorBoardOutputConfig",
    "ProfilerConfig",
    "Environment",
    "RetryStrategy",
    "RemoteDebugConfig",
    "InfraCheckConfig",
)


def now() -> float:
    """The current time in epoch seconds."""
    return time.time()


@dataclass
class TrainingJob:
    """One training job and its walk through the states."""

    name: str
    arn: str
    request: dict[str, Any]
    algorithm: str
    created: float
    pace: float
    lock: threading.RLock
    status: str = "InProgress"
    secondary: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    injected_failure: str | None = None
    training_start: float | None = None
    training_end: float | None = None
    last_modified: float = 0.0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = "Stopped"
    thread: threading.Thread | None = None
    log_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_modified = self.created
        self.transitions.append(
            {"Status": "Starting", "StartTime": self.created, "StatusMessage": STATUS_MESSAGES["Starting"]}
        )

    @property
    def model_artifacts(self) -> str:
        """``<S3OutputPath>/<name>/output/model.tar.gz``."""
        output = str(self.request["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"

    @property
    def terminal(self) -> bool:
        """True once Completed, Failed or Stopped."""
        return self.status in ("Completed", "Failed", "Stopped")

    def move(self, secondary: str, message: str | None = None, status: str | None = None) -> None:
        """Enter ``secondary`` (ending the previous transition); ``status`` changes the primary status too."""
        with self.lock:
            stamp = now()
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = stamp
            entry: dict[str, Any] = {
                "Status": secondary,
                "StartTime": stamp,
                "StatusMessage": message or STATUS_MESSAGES.get(secondary, secondary),
            }
            if secondary in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
                entry["EndTime"] = stamp
            self.transitions.append(entry)
            self.secondary = secondary
            if status is not None:
                self.status = status
            self.last_modified = stamp

    def message(self, text: str) -> None:
        """Update the current transition's status message."""
        with self.lock:
            self.transitions[-1]["StatusMessage"] = text
            self.last_modified = now()

    def finish(self, status: str, secondary: str, failure: str | None = None) -> None:
        """End the walk in a terminal state (once; later calls are ignored)."""
        with self.lock:
            if self.terminal:
                return
            if self.training_start is not None and self.training_end is None:
                self.training_end = now()
            self.failure_reason = failure[:1024] if failure else None
            self.move(secondary, status=status)

    def request_stop(self) -> None:
        """StopTrainingJob: Stopping now, Stopped when the runner has stopped."""
        with self.lock:
            self.move("Stopping", status="Stopping")
            self.stop.set()

    def seconds(self) -> int | None:
        """Training seconds so far (whole, at least 1 once started)."""
        if self.training_start is None:
            return None
        end = self.training_end if self.training_end is not None else now()
        return max(1, math.ceil(end - self.training_start))

    def describe(self) -> dict[str, Any]:
        """The DescribeTrainingJob answer."""
        with self.lock:
            out: dict[str, Any] = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts},
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.last_modified),
            }
            for key in TRAINING_ECHO:
                if key in self.request:
                    out[key] = self.request[key]
            out.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": 86400})
            out.setdefault("EnableNetworkIsolation", False)
            out.setdefault("EnableInterContainerTrafficEncryption", False)
            out.setdefault("EnableManagedSpotTraining", False)
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            if self.training_start is not None:
                out["TrainingStartTime"] = timestamp(self.training_start)
                seconds = self.seconds()
                out["TrainingTimeInSeconds"] = seconds
                out["BillableTimeInSeconds"] = seconds
            if self.training_end is not None:
                out["TrainingEndTime"] = timestamp(self.training_end)
            out["SecondaryStatusTransitions"] = [
                {k: (timestamp(v) if k in ("StartTime", "EndTime") else v) for k, v in t.items()}
                for t in self.transitions
            ]
            if self.metrics:
                out["FinalMetricDataList"] = [{**m, "Timestamp": timestamp(m["Timestamp"])} for m in self.metrics]
            return out

    def summary(self) -> dict[str, Any]:
        """The ListTrainingJobs entry."""
        with self.lock:
            out = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.last_modified),
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary,
            }
            if self.training_end is not None:
                out["TrainingEndTime"] = timestamp(self.training_end)
            return out


@dataclass
class Model:
    """A CreateModel resource."""

    name: str
    arn: str
    request: dict[str, Any]
    created: float

    @property
    def container(self) -> dict[str, Any]:
        """The primary container (or the first of ``Containers``)."""
        primary = self.request.get("PrimaryContainer")
        if primary:
            return dict(primary)
        containers = self.request.get("Containers") or [{}]
        return dict(containers[0])

    def describe(self) -> dict[str, Any]:
        """The DescribeModel answer."""
        out: dict[str, Any] = {"ModelName": self.name, "ModelArn": self.arn, "CreationTime": timestamp(self.created)}
        for key in ("PrimaryContainer", "Containers", "InferenceExecutionConfig", "ExecutionRoleArn", "VpcConfig"):
            if key in self.request:
                out[key] = self.request[key]
        out["EnableNetworkIsolation"] = bool(self.request.get("EnableNetworkIsolation", False))
        return out

    def summary(self) -> dict[str, Any]:
        """The ListModels entry."""
        return {"ModelName": self.name, "ModelArn": self.arn, "CreationTime": timestamp(self.created)}


@dataclass
class EndpointConfig:
    """A CreateEndpointConfig resource."""

    name: str
    arn: str
    request: dict[str, Any]
    created: float

    def describe(self) -> dict[str, Any]:
        """The DescribeEndpointConfig answer."""
        out: dict[str, Any] = {
            "EndpointConfigName": self.name,
            "EndpointConfigArn": self.arn,
            "ProductionVariants": self.request["ProductionVariants"],
            "CreationTime": timestamp(self.created),
        }
        for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig"):
            if key in self.request:
                out[key] = self.request[key]
        return out

    def summary(self) -> dict[str, Any]:
        """The ListEndpointConfigs entry."""
        return {
            "EndpointConfigName": self.name,
            "EndpointConfigArn": self.arn,
            "CreationTime": timestamp(self.created),
        }


@dataclass
class Endpoint:
    """A CreateEndpoint resource; ``served`` is the loaded model once InService."""

    name: str
    arn: str
    config_name: str
    variants: list[dict[str, Any]]
    created: float
    pace: float
    lock: threading.RLock
    status: str = "Creating"
    failure_reason: str | None = None
    last_modified: float = 0.0
    served: Any = None
    image: str = ""
    thread: threading.Thread | None = None
    runner: Any = None
    log_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_modified = self.created

    def set_status(self, status: str, failure: str | None = None) -> None:
        """Move to ``status`` (``failure`` sets FailureReason)."""
        with self.lock:
            self.status = status
            if failure is not None:
                self.failure_reason = failure[:1024]
            self.last_modified = now()

    @property
    def variant_name(self) -> str:
        """The first production variant's name (the one invocations reach)."""
        return str(self.variants[0].get("VariantName", "AllTraffic"))

    def describe(self) -> dict[str, Any]:
        """The DescribeEndpoint answer."""
        with self.lock:
            out: dict[str, Any] = {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "EndpointConfigName": self.config_name,
                "EndpointStatus": self.status,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.last_modified),
            }
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            if self.status in ("InService", "Updating", "Deleting"):
                out["ProductionVariants"] = [
                    {
                        "VariantName": str(v.get("VariantName")),
                        "DeployedImages": [
                            {
                                "SpecifiedImage": self.image,
                                "ResolvedImage": self.image,
                                "ResolutionTime": timestamp(self.created),
                            }
                        ]
                        if self.image
                        else [],
                        "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
                        "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                        "CurrentInstanceCount": int(v.get("InitialInstanceCount", 1)),
                        "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                    }
                    for v in self.variants
                ]
            return out

    def summary(self) -> dict[str, Any]:
        """The ListEndpoints entry."""
        with self.lock:
            return {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.last_modified),
                "EndpointStatus": self.status,
            }


@dataclass
class TransformJob:
    """A CreateTransformJob resource."""

    name: str
    arn: str
    request: dict[str, Any]
    created: float
    pace: float
    lock: threading.RLock
    status: str = "InProgress"
    failure_reason: str | None = None
    start: float | None = None
    end: float | None = None
    last_modified: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.last_modified = self.created

    @property
    def terminal(self) -> bool:
        """True once Completed, Failed or Stopped."""
        return self.status in ("Completed", "Failed", "Stopped")

    def set_status(self, status: str, failure: str | None = None) -> None:
        """Move to ``status``; terminal states stamp the end time."""
        with self.lock:
            if self.terminal:
                return
            self.status = status
            stamp = now()
            if failure is not None:
                self.failure_reason = failure[:1024]
            if status in ("Completed", "Failed", "Stopped"):
                self.end = stamp
            self.last_modified = stamp

    def describe(self) -> dict[str, Any]:
        """The DescribeTransformJob answer."""
        with self.lock:
            out: dict[str, Any] = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "TransformJobStatus": self.status,
                "ModelName": self.request["ModelName"],
                "TransformInput": self.request["TransformInput"],
                "TransformOutput": self.request["TransformOutput"],
                "TransformResources": self.request["TransformResources"],
                "CreationTime": timestamp(self.created),
            }
            for key in (
                "MaxConcurrentTransforms",
                "ModelClientConfig",
                "MaxPayloadInMB",
                "BatchStrategy",
                "Environment",
                "DataCaptureConfig",
                "DataProcessing",
                "ExperimentConfig",
            ):
                if key in self.request:
                    out[key] = self.request[key]
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            if self.start is not None:
                out["TransformStartTime"] = timestamp(self.start)
            if self.end is not None:
                out["TransformEndTime"] = timestamp(self.end)
            return out

    def summary(self) -> dict[str, Any]:
        """The ListTransformJobs entry."""
        with self.lock:
            out = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.last_modified),
                "TransformJobStatus": self.status,
            }
            if self.end is not None:
                out["TransformEndTime"] = timestamp(self.end)
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            return out


#: kind -> (ARN resource word, the service's name for it in "Could not find ..." messages)
KINDS = {
    "training-job": "training job",
    "model": "model",
    "endpoint-config": "endpoint configuration",
    "endpoint": "endpoint",
    "transform-job": "transform job",
}


class Store:
    """Every resource of the emulated account, by kind and name, plus tags by ARN."""

    def __init__(self, region: str, account: str = ACCOUNT) -> None:
        self.region = region
        self.account = account
        self.lock = threading.RLock()
        self.items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.tags: dict[str, dict[str, str]] = {}

    def arn(self, kind: str, name: str) -> str:
        """The resource's ARN (name lower-cased, as SageMaker writes it)."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def get(self, kind: str, name: str) -> Any | None:
        """The resource, ``None`` when there is none of that name."""
        with self.lock:
            return self.items[kind].get(name)

    def need(self, kind: str, name: str) -> Any:
        """The resource, or the service's ValidationException ``Could not find ...``."""
        found = self.get(kind, name)
        if found is None:
            raise self.not_found(kind, name)
        return found

    def not_found(self, kind: str, name: str) -> Exception:
        """The service's error for an unknown name (moto's shapes, cloud-apis.md 5.2)."""
        arn = self.arn(kind, name)
        if kind == "training-job":
            return validation_error(f"Could not find training job '{arn}'.")
        return validation_error(f'Could not find {KINDS[kind]} "{arn}".')

    def add(self, kind: str, name: str, item: Any) -> None:
        """Store a new resource (the caller checked the name is free)."""
        with self.lock:
            self.items[kind][name] = item

    def remove(self, kind: str, name: str) -> Any | None:
        """Forget a resource and its tags."""
        with self.lock:
            item = self.items[kind].pop(name, None)
            self.tags.pop(self.arn(kind, name), None)
            return item

    def values(self, kind: str) -> list[Any]:
        """Every resource of ``kind``."""
        with self.lock:
            return list(self.items[kind].values())

    def find_arn(self, arn: str) -> Any | None:
        """The resource an ARN names, ``None`` when none does."""
        kind = arn.rpartition(":")[2].partition("/")[0]
        if kind not in self.items:
            return None
        with self.lock:
            for item in self.items[kind].values():
                if item.arn == arn:
                    return item
        return None

    def set_tags(self, arn: str, tags: Iterable[dict[str, str]]) -> None:
        """Add or overwrite tags of a resource."""
        with self.lock:
            current = self.tags.setdefault(arn, {})
            for tag in tags:
                current[str(tag["Key"])] = str(tag.get("Value", ""))

    def get_tags(self, arn: str) -> list[dict[str, str]]:
        """The resource's tags as ``[{Key, Value}]``."""
        with self.lock:
            return [{"Key": k, "Value": v} for k, v in self.tags.get(arn, {}).items()]

    def delete_tags(self, arn: str, keys: Iterable[str]) -> None:
        """Remove tags by key."""
        with self.lock:
            current = self.tags.get(arn, {})
            for key in keys:
                current.pop(key, None)


def page(
    items: list[Any],
    params: dict[str, Any],
    *,
    name: Callable[[Any], str],
    status: Callable[[Any], str] | None = None,
    created: Callable[[Any], float],
    modified: Callable[[Any], float] | None = None,
    default_max: int = 10,
) -> tuple[list[Any], str | None]:
    """Filter, sort and cut a List* answer: ``(page, NextToken or None)``.

    Honours ``NameContains`` (case-insensitive), ``StatusEquals``, ``CreationTimeAfter/Before``,
    ``LastModifiedTimeAfter/Before``, ``SortBy`` (``Name``, ``CreationTime``, ``Status``; default
    ``CreationTime``), ``SortOrder`` (default ``Descending``), ``MaxResults`` and ``NextToken``.
    """
    chosen = list(items)
    needle = params.get("NameContains")
    if needle:
        chosen = [i for i in chosen if str(needle).lower() in name(i).lower()]
    wanted = params.get("StatusEquals")
    if wanted and status is not None:
        chosen = [i for i in chosen if status(i) == wanted]
    for key, getter, after in (
        ("CreationTimeAfter", created, True),
        ("CreationTimeBefore", created, False),
        ("LastModifiedTimeAfter", modified, True),
        ("LastModifiedTimeBefore", modified, False),
    ):
        bound = params.get(key)
        if bound is None or getter is None:
            continue
        limit = bound.timestamp()
        chosen = [i for i in chosen if (getter(i) > limit if after else getter(i) < limit)]
    sort_by = params.get("SortBy", "CreationTime")
    key_of: dict[str, Callable[[Any], Any]] = {"Name": name, "CreationTime": created}
    if status is not None:
        key_of["Status"] = status
    chosen.sort(key=key_of.get(str(sort_by), created), reverse=params.get("SortOrder", "Descending") == "Descending")
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise validation_error("Invalid pagination token because of an invalid NextToken value.") from exc
    size = int(params.get("MaxResults") or default_max)
    cut = chosen[start : start + size]
    following = None
    if start + size < len(chosen):
        following = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
    return cut, following
