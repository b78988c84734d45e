"""The emulated Custom Vision's resources and their JSON as the SDK 3.1.1 models read it.

Resources (guarded by the service's lock): :class:`Project` (settings, tags, images, iterations, a ``revision``
counter bumped by every change that makes training needed again), :class:`Tag`, :class:`StoredImage` (bytes on
disk under the state folder, content hash for duplicates, tags, normalised regions), :class:`Iteration` (status,
training inputs snapshot, model folder, publish name, exports) and :class:`ExportJob`.

``as_wire()`` methods give the camelCase JSON of the SDK's ``_attribute_map`` keys (``Project``, ``Tag``,
``Image``, ``Iteration``, ``Export``); timestamps are ISO 8601 in UTC (msrest's ``iso-8601``).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now() -> str:
    """The current time as ISO 8601 UTC with a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Tag:
    id: str
    name: str
    description: str | None
    type: str
    created: str

    def as_wire(self, image_count: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "imageCount": image_count,
        }


@dataclass
class StoredImage:
    id: str
    created: str
    width: int
    height: int
    digest: str
    path: Path
    tag_ids: list[str] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def region_tag_ids(self) -> set[str]:
        return {str(r["tagId"]) for r in self.regions}

    def all_tag_ids(self) -> set[str]:
        return set(self.tag_ids) | self.region_tag_ids()

    def as_wire(self, tags: dict[str, Tag], base_url: str) -> dict[str, Any]:
        uri = f"{base_url}/_emulator/images/{self.id}"
        return {
            "id": self.id,
            "created": self.created,
            "width": self.width,
            "height": self.height,
            "resizedImageUri": uri,
            "thumbnailUri": uri,
            "originalImageUri": uri,
            "tags": [
                {"tagId": t, "tagName": tags[t].name if t in tags else None, "created": self.created}
                for t in self.tag_ids
            ],
            "regions": [
                {**region, "tagName": tags[region["tagId"]].name if region["tagId"] in tags else None}
                for region in self.regions
            ],
            "metadata": dict(self.metadata) or None,
        }


@dataclass
class ExportJob:
    id: str
    platform: str
    flavor: str | None
    status: str = "Exporting"
    download_uri: str | None = None
    path: Path | None = None

    def as_wire(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "status": self.status,
            "downloadUri": self.download_uri,
            "flavor": self.flavor,
            "newerVersionAvailable": False,
        }


@dataclass
class TrainingImage:
    """One image of an iteration's snapshot: file, image-level tag ids, regions (normalised), size."""

    path: Path
    tag_ids: list[str]
    regions: list[dict[str, Any]]
    width: int
    height: int


@dataclass
class Iteration:
    id: str
    name: str
    project_id: str
    domain_id: str
    exportable: bool
    exportable_to: list[str]
    classification_type: str | None
    training_type: str
    reserved_budget_in_hours: int
    revision: int
    created: str
    status: str = "Training"
    last_modified: str = ""
    trained_at: str | None = None
    training_time_in_minutes: int = 0
    publish_name: str | None = None
    original_publish_resource_id: str | None = None
    training_error_details: str | None = None
    task: str = "classification"
    tag_ids: list[str] = field(default_factory=list)
    """Tag ids in the model's class-index order."""
    labels: list[str] = field(default_factory=list)
    """Tag names in the model's class-index order."""
    snapshot: list[TrainingImage] = field(default_factory=list)
    model_dir: Path | None = None
    scores: list[Any] = field(default_factory=list)
    """The trained model's raw answers on the snapshot (class probabilities, or detections)."""
    exports: list[ExportJob] = field(default_factory=list)
    deleted: bool = False
    model: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created": self.created,
            "lastModified": self.last_modified or self.created,
            "trainedAt": self.trained_at,
            "projectId": self.project_id,
            "exportable": self.exportable and self.status == "Completed",
            "exportableTo": list(self.exportable_to) if self.exportable and self.status == "Completed" else [],
            "domainId": self.domain_id,
            "classificationType": self.classification_type,
            "trainingType": self.training_type,
            "reservedBudgetInHours": self.reserved_budget_in_hours,
            "trainingTimeInMinutes": self.training_time_in_minutes,
            "publishName": self.publish_name,
            "originalPublishResourceId": self.original_publish_resource_id,
            "customBaseModelInfo": None,
            "trainingErrorDetails": self.training_error_details,
        }


@dataclass
class Project:
    id: str
    name: str
    description: str
    domain_id: str
    domain_type: str
    classification_type: str | None
    target_export_platforms: list[str]
    created: str
    folder: Path
    last_modified: str = ""
    tags: dict[str, Tag] = field(default_factory=dict)
    images: dict[str, StoredImage] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    iterations: dict[str, Iteration] = field(default_factory=dict)
    revision: int = 0
    iteration_counter: int = 0

    @property
    def detection(self) -> bool:
        return self.domain_type == "ObjectDetection"

    def touch(self) -> None:
        """Something changed that makes training needed again."""
        self.revision += 1
        self.last_modified = now()

    def image_count(self, tag_id: str) -> int:
        return sum(1 for image in self.images.values() if tag_id in image.all_tag_ids())

    def as_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "settings": {
                "domainId": self.domain_id,
                "classificationType": self.classification_type,
                "targetExportPlatforms": list(self.target_export_platforms),
                "useNegativeSet": True,
                "detectionParameters": None,
                "imageProcessingSettings": None,
                "exportModelContainerUri": None,
                "notificationQueueUri": None,
            },
            "created": self.created,
            "lastModified": self.last_modified or self.created,
            "thumbnailUri": None,
            "drModeEnabled": False,
            "status": "Succeeded",
        }
