"""The Rekognition provider's settings, parsed and checked.

Settings come from ``mcv.toml`` ``[providers.rekognition]``, ``MCV_REKOGNITION_<KEY>`` and ``-o key=value``
(:mod:`multicloud_cv.config`). boto3's chain keeps working underneath: ``profile`` (else ``AWS_PROFILE``),
``region`` (else ``AWS_REGION`` / the profile), credentials, and ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_REKOGNITION`` / ``AWS_ENDPOINT_URL_S3`` (botocore reads them; that is how the emulator
is reached). Sessions and clients: :mod:`multicloud_cv.aws`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multicloud_cv.aws import AwsClients, bucket_setting
from multicloud_cv.config import Setting, positive_float, positive_int
from multicloud_cv.errors import ConfigError

SETTINGS = (
    Setting("region", "AWS region of the project (default: boto3's chain: AWS_REGION, the profile)"),
    Setting("profile", "AWS profile name (default: boto3's chain: AWS_PROFILE, default profile)"),
    Setting("bucket", "S3 bucket for images, manifests and training output (same region)", required=True),
    Setting("prefix", "key prefix inside the bucket", default="mcv"),
    Setting("project", "Custom Labels project name, created when missing (default: mcv-<dataset folder>)"),
    Setting("min_inference_units", "inference units a started model runs on (each bills by the hour)", default="1"),
    Setting("max_inference_units", "upper bound for autoscaling; empty: no autoscaling"),
    Setting(
        "poll_s",
        "first interval between status calls while waiting (grows to 120 s; a smaller one to 8x itself)",
        default="15",
    ),
)

_PROJECT_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")


@dataclass(frozen=True)
class Options:
    """The settings parsed and checked: one clear error per bad value."""

    region: str | None
    profile: str | None
    bucket: str | None
    prefix: str
    project: str | None
    min_inference_units: int
    max_inference_units: int | None
    poll_s: float

    @classmethod
    def parse(cls, config: Mapping[str, str]) -> Options:
        """Read resolved settings; raise :class:`ConfigError` naming the key and the fix."""
        bucket = bucket_setting(config)
        project = config.get("project") or None
        if project and not _PROJECT_NAME.match(project):
            raise ConfigError(f"project '{project}' must be 1-255 characters of letters, digits, '_', '.', '-'")
        low = positive_int(config, "min_inference_units", 1)
        high_raw = config.get("max_inference_units") or ""
        high = positive_int(config, "max_inference_units", 1) if high_raw else None
        if high is not None and high < low:
            raise ConfigError(f"max_inference_units {high} is below min_inference_units {low}")
        poll = positive_float(config, "poll_s", 15.0)
        return cls(
            region=config.get("region") or None,
            profile=config.get("profile") or None,
            bucket=bucket,
            prefix=(config.get("prefix") or "mcv").strip("/"),
            project=project,
            min_inference_units=low,
            max_inference_units=high,
            poll_s=poll,
        )


class Clients(AwsClients):
    """boto3 clients of the shared session for the Rekognition settings."""

    def __init__(self, options: Options) -> None:
        super().__init__(options.profile, options.region)
        self.options = options

    @property
    def rekognition(self) -> Any:
        return self.client("rekognition")

    def emulated(self) -> bool:
        """True when the Rekognition endpoint is on loopback: the real service never is."""
        return self.on_loopback("rekognition")
