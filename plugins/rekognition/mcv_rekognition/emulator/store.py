"""The emulated account's Custom Labels resources: projects, datasets, model versions, tags.

State is in memory, guarded by one lock (:attr:`Store.lock`); runner threads change a resource through its
methods. ARNs follow the patterns of botocore's model (``rekognition/2016-06-27``)::

    arn:aws:rekognition:<region>:<account>:project/<name>/<13-digit stamp>
    arn:aws:rekognition:<region>:<account>:project/<name>/dataset/(train|test)/<stamp>
    arn:aws:rekognition:<region>:<account>:project/<name>/version/<version name>/<stamp>

as the guide's examples show them (``arn:aws:rekognition:us-east-1:123456789010:project/project name/
1234567890123``; a version: ``.../project/my-project/version/v0/1574317227432``). Stamps are creation times
in epoch milliseconds, unique in the account. Timestamps are epoch seconds here, datetimes in answers.

Status words (BC enums) and the StatusMessage texts the emulator shows while a version walks its states
(the texts are the emulator's: the guide gives no list of them).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcv_rekognition.emulator.manifest import Entry
from multicloud_cv.emulation.aws import ACCOUNT
from multicloud_cv.emulation.protocol import timestamp

VERSION_MESSAGES = {
    "TRAINING_IN_PROGRESS": "The model is being trained.",
    "TRAINING_COMPLETED": "The model is ready to run.",
    "STARTING": "The model is starting.",
    "RUNNING": "The model is running.",
    "STOPPING": "The model is being stopped.",
    "STOPPED": "The model is stopped.",
    "DELETING": "The model is being deleted.",
    "FAILED": "The model failed to start.",
}

DATASET_MESSAGES = {
    "CREATE_IN_PROGRESS": "The dataset is being created.",
    "CREATE_COMPLETE": "The dataset is created.",
    "UPDATE_IN_PROGRESS": "The dataset is being updated.",
    "UPDATE_COMPLETE": "The dataset is updated.",
    "DELETE_IN_PROGRESS": "The dataset is being deleted.",
}


def now() -> float:
    """The current time in epoch seconds."""
    return time.time()


@dataclass
class DatasetRecord:
    """One TRAIN or TEST dataset of a project: its entries are validated JSON Lines (errors included)."""

    arn: str
    project: str
    kind: str
    created: float
    status: str = "CREATE_IN_PROGRESS"
    status_message: str = DATASET_MESSAGES["CREATE_IN_PROGRESS"]
    status_code: str = "SUCCESS"
    updated: float = 0.0
    entries: list[Entry] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.updated = self.created

    @property
    def ready(self) -> bool:
        """True when the dataset can be used (created or updated)."""
        return self.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")

    @property
    def busy(self) -> bool:
        """True while it is created, updated or deleted."""
        return self.status.endswith("_IN_PROGRESS")

    def set_status(self, status: str, message: str | None = None, code: str = "SUCCESS") -> None:
        """Enter ``status`` (message: the default text of the status)."""
        with self.lock:
            self.status = status
            self.status_message = message or DATASET_MESSAGES.get(status, status)
            self.status_code = code
            self.updated = now()

    def stats(self) -> dict[str, int]:
        """``DatasetStats``: entries, labeled entries, labels in use, entries with an error."""
        with self.lock:
            entries = list(self.entries)
        labels = {label for e in entries if not e.invalid and not e.ignored for label in e.all_labels}
        return {
            "LabeledEntries": sum(1 for e in entries if not e.invalid and not e.ignored and e.all_labels),
            "TotalEntries": len(entries),
            "TotalLabels": len(labels),
            "ErrorEntries": sum(1 for e in entries if e.has_errors),
        }

    def describe(self) -> dict[str, Any]:
        """The DescribeDataset ``DatasetDescription``."""
        with self.lock:
            out: dict[str, Any] = {
                "CreationTimestamp": timestamp(self.created),
                "LastUpdatedTimestamp": timestamp(self.updated),
                "Status": self.status,
                "StatusMessage": self.status_message,
                "StatusMessageCode": self.status_code,
            }
            if self.status not in ("CREATE_IN_PROGRESS", "CREATE_FAILED"):
                out["DatasetStats"] = self.stats()
            return out

    def metadata(self) -> dict[str, Any]:
        """The DescribeProjects ``DatasetMetadata``."""
        with self.lock:
            return {
                "CreationTimestamp": timestamp(self.created),
                "DatasetType": self.kind,
                "DatasetArn": self.arn,
                "Status": self.status,
                "StatusMessage": self.status_message,
                "StatusMessageCode": self.status_code,
            }


@dataclass
class Version:
    """One model version and its walk through the states."""

    name: str
    arn: str
    project: str
    created: float
    request: dict[str, Any]
    pace: float
    workdir: Path
    status: str = "TRAINING_IN_PROGRESS"
    status_message: str = VERSION_MESSAGES["TRAINING_IN_PROGRESS"]
    injected_failure: str | None = None
    training_start: float | None = None
    training_end: float | None = None
    billable_seconds: int | None = None
    min_units: int | None = None
    max_units: int | None = None
    training_result: dict[str, Any] | None = None
    testing_result: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    manifest_summary: dict[str, Any] | None = None
    task: str | None = None
    classes: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    served: Any = None
    generation: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def model_dir(self) -> Path:
        """Where the trained model lives (the service keeps models in its own account)."""
        return self.workdir / "model"

    def set_status(self, status: str, message: str | None = None) -> None:
        """Enter ``status`` (message: the default text of the status)."""
        with self.lock:
            self.status = status
            self.status_message = message or VERSION_MESSAGES.get(status, status)

    def describe(self) -> dict[str, Any]:
        """The ``ProjectVersionDescription``."""
        with self.lock:
            out: dict[str, Any] = {
                "ProjectVersionArn": self.arn,
                "CreationTimestamp": timestamp(self.created),
                "Status": self.status,
                "StatusMessage": self.status_message,
                "OutputConfig": dict(self.request["OutputConfig"]),
                "Feature": "CUSTOM_LABELS",
            }
            if self.min_units is not None:
                out["MinInferenceUnits"] = self.min_units
            if self.max_units is not None:
                out["MaxInferenceUnits"] = self.max_units
            if self.billable_seconds is not None:
                out["BillableTrainingTimeInSeconds"] = self.billable_seconds
            if self.training_end is not None:
                out["TrainingEndTimestamp"] = timestamp(self.training_end)
            if self.training_result is not None:
                out["TrainingDataResult"] = self.training_result
            if self.testing_result is not None:
                out["TestingDataResult"] = self.testing_result
            if self.evaluation is not None:
                out["EvaluationResult"] = self.evaluation
            if self.manifest_summary is not None:
                out["ManifestSummary"] = self.manifest_summary
            for key in ("KmsKeyId", "VersionDescription"):
                if key in self.request:
                    out[key] = self.request[key]
            return out


@dataclass
class Project:
    """A Custom Labels project: its datasets (one per type) and model versions."""

    name: str
    arn: str
    created: float
    status: str = "CREATED"
    datasets: dict[str, DatasetRecord] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The ``ProjectDescription``."""
        return {
            "ProjectArn": self.arn,
            "CreationTimestamp": timestamp(self.created),
            "Status": self.status,
            "Datasets": [d.metadata() for d in self.datasets.values()],
            "Feature": "CUSTOM_LABELS",
        }


class Store:
    """Every resource of the emulated account, by name and by ARN, plus tags."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.account = ACCOUNT
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self._last_stamp = 0

    def stamp(self) -> int:
        """A unique creation stamp in epoch milliseconds (13 digits)."""
        with self.lock:
            value = max(int(now() * 1000), self._last_stamp + 1)
            self._last_stamp = value
            return value

    def base(self, project: str) -> str:
        """``arn:aws:rekognition:<region>:<account>:project/<name>``."""
        return f"arn:aws:rekognition:{self.region}:{self.account}:project/{project}"

    def project_by_arn(self, arn: str) -> Project | None:
        """The project of a project ARN."""
        with self.lock:
            for project in self.projects.values():
                if project.arn == arn:
                    return project
        return None

    def dataset_by_arn(self, arn: str) -> tuple[Project, DatasetRecord] | None:
        """The project and dataset of a dataset ARN."""
        with self.lock:
            for project in self.projects.values():
                for dataset in project.datasets.values():
                    if dataset.arn == arn:
                        return project, dataset
        return None

    def version_by_arn(self, arn: str) -> tuple[Project, Version] | None:
        """The project and version of a version ARN."""
        with self.lock:
            for project in self.projects.values():
                for version in project.versions.values():
                    if version.arn == arn:
                        return project, version
        return None

    def exists(self, arn: str) -> bool:
        """True when ``arn`` names a project, dataset or version of the account."""
        return (
            self.project_by_arn(arn) is not None
            or self.dataset_by_arn(arn) is not None
            or self.version_by_arn(arn) is not None
        )
