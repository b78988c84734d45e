"""The native Rekognition Custom Labels requests, built in one place for the plan and the submission.

Every builder returns parameters exactly as boto3 takes them; :func:`validate` runs botocore's own
parameter validation against the ``rekognition`` service model (no network, no credentials).
Names: projects default to ``mcv-<job id>``, versions are ``mcv-<job id>``, so a create retried after a
lost answer finds its own resource, and ``mcv cleanup --models`` can tell ours apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from multicloud_cv.aws import validate_request
from multicloud_cv.errors import BadInput

NAME_PREFIX = "mcv-"


def resource_name(our_id: str) -> str:
    """``mcv-<id>`` with only the characters project and version names allow (``[a-zA-Z0-9_.-]``)."""
    name = re.sub(r"[^a-zA-Z0-9_.\-]", "-", f"{NAME_PREFIX}{our_id}")[:255]
    if not name:
        raise BadInput(f"cannot make a Rekognition name from '{our_id}'")
    return name


def tags(values: Mapping[str, str | None]) -> dict[str, str]:
    """Rekognition ``Tags`` (a map) from a mapping, leaving out empty values; ':' is not a valid key here."""
    return {key.replace(":", "-"): value for key, value in values.items() if value}


def create_project(name: str, tag_values: Mapping[str, str | None]) -> dict[str, Any]:
    return {"ProjectName": name, "Feature": "CUSTOM_LABELS", "Tags": tags(tag_values)}


def create_dataset(project_arn: str, kind: str, bucket: str, key: str, tag_values: Mapping[str, str | None]) -> dict:
    """CreateDataset from a Ground Truth manifest in S3; ``kind`` is TRAIN or TEST."""
    return {
        "ProjectArn": project_arn,
        "DatasetType": kind,
        "DatasetSource": {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}},
        "Tags": tags(tag_values),
    }


def create_version(
    project_arn: str,
    version: str,
    bucket: str,
    output_prefix: str,
    tag_values: Mapping[str, str | None],
    train_manifest: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProjectVersion. With ``train_manifest`` (bucket, key): a project without datasets, the test set
    split off automatically (``TestingData.AutoCreate``); without: the project's TRAIN and TEST datasets."""
    params: dict[str, Any] = {
        "ProjectArn": project_arn,
        "VersionName": version,
        "OutputConfig": {"S3Bucket": bucket, "S3KeyPrefix": output_prefix},
        "Tags": tags(tag_values),
    }
    if train_manifest is not None:
        manifest = {"GroundTruthManifest": {"S3Object": {"Bucket": train_manifest[0], "Name": train_manifest[1]}}}
        params["TrainingData"] = {"Assets": [manifest]}
        params["TestingData"] = {"AutoCreate": True}
    return params


#: botocore's own validation against the service model (:func:`multicloud_cv.aws.validate_request`).
validate = validate_request
