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

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from multicloud_cv.config import Setting
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
    Setting("poll_s", "first interval between status calls while waiting (grows to 60 s)", default="10"),
)

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
        bucket = config.get("bucket") or None
        if bucket and (bucket.startswith("s3://") or "/" in bucket):
            raise ConfigError(f"bucket '{bucket}' must be a bare bucket name (no s3://, no /); put paths in 'prefix'")
        return cls(
            region=config.get("region") or None,
            profile=config.get("profile") or None,
            role_arn=config.get("role_arn") or None,
            bucket=bucket,
            prefix=config.get("prefix", "mcv").strip("/"),
            instance_type=config.get("instance_type", "ml.p3.2xlarge"),
            instance_count=_positive_int(config, "instance_count", 1),
            volume_gb=_positive_int(config, "volume_gb", 50),
            max_runtime_s=_positive_int(config, "max_runtime_s", 86400),
            input_mode=mode,
            label_format=label_format,
            endpoint_instance_type=config.get("endpoint_instance_type", "ml.m5.xlarge"),
            endpoint_instance_count=_positive_int(config, "endpoint_instance_count", 1),
            transform_instance_type=config.get("transform_instance_type", "ml.m5.xlarge"),
            poll_s=_positive_float(config, "poll_s", 10.0),
        )


def _positive_int(config: Mapping[str, str], key: str, default: int) -> int:
    raw = config.get(key) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"setting '{key}' must be a whole number, got '{raw}'") from None
    if value < 1:
        raise ConfigError(f"setting '{key}' must be at least 1, got {value}")
    return value


def _positive_float(config: Mapping[str, str], key: str, default: float) -> float:
    raw = config.get(key) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"setting '{key}' must be a number, got '{raw}'") from None
    if value <= 0:
        raise ConfigError(f"setting '{key}' must be positive, got {value:g}")
    return value


#: Variables that change which credentials or profile a session resolves (part of the session cache key).
_SESSION_ENV = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_SESSIONS: dict[tuple[str | None, ...], Any] = {}
_LOCK = threading.RLock()


def shared_session(profile: str | None, region: str | None) -> Any:
    """One boto3 session per profile, region and credential environment, for the whole process.

    Loading botocore's data (endpoints, service models) costs about 0.3 s per new session; the trainer,
    deployer and predictor of one run, and the preflight checks, share it. Endpoint variables
    (``AWS_ENDPOINT_URL*``) are read at each client's creation, so they are not part of the key.
    """
    import boto3

    key = (profile, region, *(os.environ.get(name) for name in _SESSION_ENV))
    with _LOCK:
        if key not in _SESSIONS:
            try:
                _SESSIONS[key] = boto3.session.Session(profile_name=profile, region_name=region)
            except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
                raise ConfigError(f"cannot open the AWS session: {exc}; check 'profile' and your AWS config") from exc
        return _SESSIONS[key]


class Clients:
    """boto3 clients of the shared session, made on first use (boto3 is imported here, never at module load).

    Thread-safe: several prediction threads may ask for the same client at once; it is made once, under a
    lock, because creating clients from one session in several threads at a time is not safe in boto3.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        return shared_session(self.options.profile, self.options.region)

    @property
    def region(self) -> str:
        """The region in use; a clear error when neither the settings nor boto3's chain give one."""
        region = self.session.region_name
        if not region:
            raise ConfigError("no AWS region: set -o region=us-east-1 (or AWS_REGION, or a region in your profile)")
        return str(region)

    def client(self, service: str) -> Any:
        """A client with standard retries (throttling and 5xx retried with backoff, at most 5 attempts in all)."""
        found = self._clients.get(service)
        if found is not None:
            return found
        from botocore.config import Config

        with _LOCK:
            if service not in self._clients:
                config = Config(retries={"mode": "standard", "total_max_attempts": 5}, user_agent_extra="multicloud-cv")
                self._clients[service] = self.session.client(service, region_name=self.region, config=config)
            return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    def emulated(self) -> bool:
        """True when the SageMaker endpoint is on loopback: the real service never is."""
        host = urlparse(str(self.sagemaker.meta.endpoint_url)).hostname or ""
        return host in _LOOPBACK

    def has_credentials(self) -> bool:
        """Whether boto3's chain finds credentials (no network call)."""
        return self.session.get_credentials() is not None
