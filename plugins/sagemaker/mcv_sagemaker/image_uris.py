"""The ECR image of each built-in algorithm in each region, from a data file kept beside this module.

``data/image_uris.json`` copies the registry accounts of the SageMaker Python SDK's
``image_uri_config/image-classification.json`` and ``object-detection.json`` (sagemaker 2.257.7; the two files
share their accounts and differ only in the repository), as tabled in reference/cloud-apis.md 1.5, with its
``source`` and ``as_of``. The URI is ``{account}.dkr.ecr.{region}.{domain}/{repository}:1``: the SDK's
``ECR_URI_TEMPLATE`` with the tag ``1`` the developer guide recommends over ``latest``. The domain (and the ARN
partition, used by :mod:`mcv_sagemaker.iam`) comes from botocore's partition table: ``amazonaws.com`` in the
commercial and GovCloud partitions, ``amazonaws.com.cn`` in China, the ISO partitions' own suffixes.

Keeping our own table means no dependency on the SageMaker SDK and none of its churn (pains.md S7). A region
missing here is :class:`~multicloud_cv.errors.BadInput` listing the known ones.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from mcv_sagemaker.algorithms import ALGORITHMS
from multicloud_cv.errors import BadInput


@cache
def _table() -> dict[str, Any]:
    text = resources.files("mcv_sagemaker").joinpath("data/image_uris.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def known_regions() -> list[str]:
    """Every region the table has an image for, sorted."""
    return sorted(_table()["regions"])


def _region(region: str) -> dict[str, str]:
    regions: dict[str, dict[str, str]] = _table()["regions"]
    try:
        return regions[region]
    except KeyError:
        raise BadInput(
            f"no SageMaker built-in algorithm image is known for region '{region}'; "
            f"known regions: {', '.join(known_regions())}"
        ) from None


def registry_account(region: str) -> str:
    """The AWS account that hosts the built-in algorithm images in ``region``."""
    return _region(region)["account"]


def partition(region: str) -> str:
    """The ARN partition of ``region`` (``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-iso`` ...)."""
    return _region(region)["partition"]


def repository(algorithm: str) -> str:
    """The ECR repository name of ``algorithm``."""
    repositories: dict[str, str] = _table()["repositories"]
    try:
        return repositories[algorithm]
    except KeyError:
        raise BadInput(f"unknown SageMaker algorithm '{algorithm}'; known: {', '.join(ALGORITHMS)}") from None


def training_image(algorithm: str, region: str) -> str:
    """The training image URI, e.g. ``811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1``."""
    table = _table()
    entry = _region(region)
    return str(table["uri_template"]).format(
        account=entry["account"],
        region=region,
        domain=entry["domain"],
        repository=repository(algorithm),
        version=table["version"],
    )


def inference_image(algorithm: str, region: str) -> str:
    """The hosting image URI: the same image serves (the SDK's scope is ``inference`` and ``training``)."""
    return training_image(algorithm, region)


def source() -> tuple[str, str]:
    """Where the table comes from and when it was read: ``(source, as_of)``."""
    table = _table()
    return str(table["source"]), str(table["as_of"])
