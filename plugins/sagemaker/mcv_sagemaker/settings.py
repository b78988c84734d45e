"""The SageMaker provider's settings and the boto3 session and clients made from them.

Settings come from ``mcv.toml`` ``[providers.sagemaker]``, ``MCV_SAGEMAKER_<KEY>`` and ``-o key=value``
(:mod:`multicloud_cv.config`). boto3's own chain keeps working underneath: ``profile`` (else
``AWS_PROFILE``), ``region`` (else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile's region),
credentials from the usual chain, and the endpoint variables ``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_SAGEMAKER``, ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` and ``AWS_ENDPOINT_URL_S3``
(botocore reads them itself; that is how the emulator is reached). Nothing here is ever logged with
credentials: the session's keys are never read by this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multicloud_cv.aws import AwsClients, bucket_setting
from multicloud_cv.config import Setting, positive_float, positive_int
from multicloud_cv.errors import ConfigError

#: Input layouts for the built-in algorithms (cloud-apis.md 1.6 and 1.8).
INPUT_MODES = ("recordio", "images", "manifest")

SETTINGS = (
    Setting("region", "AWS region of jobs and endpoints (default: boto3's chain: AWS_REGION, the profile)"),
    Setting("profile", "AWS profile name (default: boto3's chain: AWS_PROFILE, default profile)"),
    Setting("role_arn", "IAM execution role SageMaker assumes to read the data and write the model", required=True),
    Setting("bucket", "S3 bucket for the staged data and the model artifacts (same region as the jobs)", required=True),
    Setting("prefix", "key prefix inside the bucket", default="mcv"),
    Setting("instance_type", "training instance type (the built-in algorithms train on GPU types)", "ml.p3.2xlarge"),
    Setting("instance_count", "training instances; above 1 is distributed training", default="1"),
    Setting("volume_gb", "training volume size in GB", default="50"),
    Setting("max_runtime_s", "StoppingCondition.MaxRuntimeInSeconds of a training job", default="86400"),
    Setting("input_mode", "data layout sent to the algorithm: recordio, images (.lst / JSON) or manifest", "recordio"),
    Setting("label_format", "multi-label labels: multi-hot (SageMaker's default) or class-id", default="multi-hot"),
    Setting("endpoint_instance_type", "hosting instance type", default="ml.m5.xlarge"),
    Setting("endpoint_instance_count", "hosting instances", default="1"),
    Setting("transform_instance_type", "batch transform instance type", default="ml.m5.xlarge"),
    Setting(
        "poll_s",
        "first interval between status calls while waiting (grows to 60 s; a smaller one to 6x itself)",
        default="10",
    ),
)


@dataclass(frozen=True)
class Options:
    """The settings parsed and checked: one clear error per bad value."""

    region: str | None
    profile: str | None
    role_arn: str | None
    bucket: str | None
    prefix: str
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_s: int
    input_mode: str
    label_format: str
    endpoint_instance_type: str
    endpoint_instance_count: int
    transform_instance_type: str
    poll_s: float

    @classmethod
    def parse(cls, config: Mapping[str, str]) -> Options:
        """Read ``config`` (resolved settings); raise :class:`ConfigError` naming the key and the fix."""
        mode = config.get("input_mode", "recordio")
        if mode not in INPUT_MODES:
            raise ConfigError(f"input_mode '{mode}' is not one of {', '.join(INPUT_MODES)}; set -o input_mode=recordio")
        label_format = config.get("label_format") or "multi-hot"
        if label_format not in ("multi-hot", "class-id"):
            raise ConfigError(
                f"label_format '{label_format}' is not multi-hot or class-id; set -o label_format=multi-hot"
            )
        bucket = bucket_setting(config)
        return cls(
            region=config.get("region") or None,
            profile=config.get("profile") or None,
            role_arn=config.get("role_arn") or None,
            bucket=bucket,
            prefix=config.get("prefix", "mcv").strip("/"),
            instance_type=config.get("instance_type", "ml.p3.2xlarge"),
            instance_count=positive_int(config, "instance_count", 1),
            volume_gb=positive_int(config, "volume_gb", 50),
            max_runtime_s=positive_int(config, "max_runtime_s", 86400),
            input_mode=mode,
            label_format=label_format,
            endpoint_instance_type=config.get("endpoint_instance_type", "ml.m5.xlarge"),
            endpoint_instance_count=positive_int(config, "endpoint_instance_count", 1),
            transform_instance_type=config.get("transform_instance_type", "ml.m5.xlarge"),
            poll_s=positive_float(config, "poll_s", 10.0),
        )


class Clients(AwsClients):
    """boto3 clients of the shared session (:mod:`multicloud_cv.aws`) for the SageMaker settings."""

    def __init__(self, options: Options) -> None:
        super().__init__(options.profile, options.region)
        self.options = options

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")

    def emulated(self) -> bool:
        """True when the SageMaker endpoint is on loopback: the real service never is."""
        return self.on_loopback("sagemaker")
