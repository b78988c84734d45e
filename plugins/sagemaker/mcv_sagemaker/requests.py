"""The native SageMaker requests, built in one place for both the plan and the real submission.

Every builder returns the parameters exactly as boto3 takes them, so ``mcv plan`` shows what
``mcv train`` sends. :func:`validate` runs botocore's own parameter validation against the
service model shipped with botocore (no network, no credentials): a request that passes here is
one the SDK would send.

Names: every resource is named ``mcv-<our id>`` (SageMaker names: 1..63 characters of
``[a-zA-Z0-9-]``), so a retried create after a lost response finds its own job instead of making
a second one, and ``mcv cleanup`` can tell our resources apart. Tags carry the run record ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcv_sagemaker.channels import Channel
from multicloud_cv.aws import validate_request
from multicloud_cv.errors import BadInput

NAME_PREFIX = "mcv-"
_NAME_OK = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
VARIANT = "AllTraffic"


def resource_name(our_id: str, suffix: str = "") -> str:
    """The SageMaker name of one of our resources: ``mcv-<id>[-suffix]``, at most 63 characters."""
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"{NAME_PREFIX}{our_id}{'-' + suffix if suffix else ''}")
    name = re.sub(r"-+", "-", name).strip("-")[:63].rstrip("-")
    if not _NAME_OK.match(name):
        raise BadInput(f"cannot make a SageMaker name from '{our_id}'")
    return name


def tags(values: Mapping[str, str | None]) -> list[dict[str, str]]:
    """SageMaker ``Tags`` from a mapping, leaving out empty values."""
    return [{"Key": key, "Value": value} for key, value in values.items() if value]


def training_job(
    *,
    name: str,
    image: str,
    role_arn: str,
    channels: Sequence[Channel],
    input_uri: str,
    output_uri: str,
    hyperparameters: Mapping[str, str],
    instance_type: str,
    instance_count: int,
    volume_gb: int,
    max_runtime_s: int,
    input_mode: str,
    tag_values: Mapping[str, str | None],
) -> dict[str, Any]:
    """CreateTrainingJob parameters for a built-in algorithm (cloud-apis.md 1.2, 1.6, 1.8)."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": input_mode},
        "RoleArn": role_arn,
        "HyperParameters": dict(hyperparameters),
        "InputDataConfig": [channel.request(input_uri) for channel in channels],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": instance_count, "VolumeSizeInGB": volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "Tags": tags(tag_values),
    }


def model(*, name: str, image: str, model_data_url: str, role_arn: str, tag_values: Mapping[str, str | None]) -> dict:
    """CreateModel parameters: the algorithm's inference image (the same URI) and the trained model.tar.gz."""
    return {
        "ModelName": name,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data_url},
        "ExecutionRoleArn": role_arn,
        "Tags": tags(tag_values),
    }


def endpoint_config(
    *, name: str, model_name: str, instance_type: str, instance_count: int, tag_values: Mapping[str, str | None]
) -> dict[str, Any]:
    """CreateEndpointConfig parameters: one production variant carrying all traffic."""
    variant = {
        "VariantName": VARIANT,
        "ModelName": model_name,
        "InitialInstanceCount": instance_count,
        "InstanceType": instance_type,
        "InitialVariantWeight": 1.0,
    }
    return {"EndpointConfigName": name, "ProductionVariants": [variant], "Tags": tags(tag_values)}


def endpoint(*, name: str, config_name: str, tag_values: Mapping[str, str | None]) -> dict[str, Any]:
    """CreateEndpoint parameters."""
    return {"EndpointName": name, "EndpointConfigName": config_name, "Tags": tags(tag_values)}


def transform_job(
    *,
    name: str,
    model_name: str,
    input_uri: str,
    output_uri: str,
    content_type: str,
    instance_type: str,
    instance_count: int = 1,
    tag_values: Mapping[str, str | None],
) -> dict[str, Any]:
    """CreateTransformJob parameters: every object under ``input_uri`` is one image, one JSON answer each."""
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "SingleRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "application/json", "AssembleWith": "None"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
        "Tags": tags(tag_values),
    }


#: botocore's own validation against the service model (:func:`multicloud_cv.aws.validate_request`).
validate = validate_request
