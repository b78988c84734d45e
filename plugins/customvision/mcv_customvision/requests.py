"""The training requests a plan shows, built and checked with the SDK's own models; nothing is sent.

Each function returns the parameters of one call as the REST API takes them (query parameters and JSON body in
the service's camelCase names), after the SDK has validated them: enum values against the SDK's enums
(``Classifier``, ``TrainingType``), an image batch through ``ImageFileCreateBatch.validate()`` with every region
complete. Image contents are not shown (``contentsBytes`` gives their size), so a plan of a large dataset stays
readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multicloud_cv.datasets.customvision import UploadEntry
from multicloud_cv.errors import BadInput


def _enum_values(name: str) -> set[str]:
    from azure.cognitiveservices.vision.customvision.training import models

    return {member.value for member in getattr(models, name)}


def create_project(name: str, domain_id: str, task: str, domain_type: str) -> dict[str, Any]:
    """CreateProject's query parameters (``classificationType`` for the classification domains only)."""
    params: dict[str, Any] = {"name": name, "domainId": domain_id, "description": "created by mcv"}
    if domain_type == "Classification":
        kind = "Multilabel" if task == "multilabel" else "Multiclass"
        if kind not in _enum_values("Classifier"):
            raise BadInput(f"classification type {kind} is not one of the SDK's Classifier values")
        params["classificationType"] = kind
    return params


def create_tag(project_id: str, name: str) -> dict[str, Any]:
    """CreateTag's parameters (tag names are 1-256 characters in the portal; empty names are refused here)."""
    if not name.strip():
        raise BadInput("a class name is empty: Custom Vision tags need a name")
    return {"projectId": project_id, "name": name, "type": "Regular"}


def batch_summary(project_id: str, entries: Sequence[UploadEntry]) -> dict[str, Any]:
    """A CreateImagesFromFiles batch, validated by the SDK's ImageFileCreateBatch, summarised without contents."""
    from mcv_customvision.uploads import sdk_batch

    tag_ids = {name: f"<tag {name}>" for entry in entries for name in entry["tag_names"]}
    tag_ids.update({r["tag_name"]: f"<tag {r['tag_name']}>" for entry in entries for r in entry["regions"]})
    batch = sdk_batch(entries, tag_ids, lambda path: b"")
    batch.validate()
    sizes = {entry["path"]: _size(entry["path"]) for entry in entries}
    return {
        "projectId": project_id,
        "images": [
            {
                "name": entry["name"],
                "contentsBytes": sizes[entry["path"]],
                "tagIds": [tag_ids[n] for n in entry["tag_names"]],
                "regions": [
                    {
                        "tagId": tag_ids[r["tag_name"]],
                        "left": r["left"],
                        "top": r["top"],
                        "width": r["width"],
                        "height": r["height"],
                    }
                    for r in entry["regions"]
                ],
            }
            for entry in entries
        ],
    }


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def train_project(project_id: str, training_type: str, budget_hours: int) -> dict[str, Any]:
    """TrainProject's query parameters, ``trainingType`` checked against the SDK's TrainingType."""
    if training_type not in _enum_values("TrainingType"):
        raise BadInput(f"training type {training_type} is not one of the SDK's TrainingType values")
    return {"projectId": project_id, "trainingType": training_type, "reservedBudgetInHours": budget_hours}
