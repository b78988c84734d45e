"""boto3 sessions and clients shared by the AWS provider plugins (SageMaker, Rekognition...).

Nothing here imports boto3 at module load (boundary 1 of the design): :func:`configured_region` reads the
environment and the AWS config file with the standard library, so ``mcv providers`` can say "no region"
without paying for boto3; sessions and clients are made on first use.

* :func:`shared_session`: one boto3 session per profile, region and credential environment for the whole
  process. Loading botocore's data costs about 0.3 s per new session; every role of a run shares it.
  Endpoint variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``) are read at each client's
  creation by botocore itself, so they are not part of the key and keep working (that is how emulators are
  reached).
* :class:`AwsClients`: clients of that session with standard retries (throttling and 5xx retried with backoff
  and jitter, 5 attempts in all), made once each under a lock: creating clients from one session in several
  threads at a time is not safe in boto3, and concurrent predictions do ask at once.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from multicloud_cv.errors import BadInput, ConfigError

#: Variables that change which credentials or profile a session resolves (part of the session cache key).
_SESSION_ENV = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_SESSIONS: dict[tuple[str | None, ...], Any] = {}
_LOCK = threading.RLock()
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def configured_region(profile: str | None) -> str | None:
    """The region boto3 would use from the environment or the AWS config file (read without boto3)."""
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if found:
        return found
    path = os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    name = profile or os.environ.get("AWS_PROFILE") or "default"
    section = "default" if name == "default" else f"profile {name}"
    return parser.get(section, "region", fallback=None) or None


def bucket_setting(values: Mapping[str, str]) -> str | None:
    """The ``bucket`` setting: a bare S3 bucket name or ``None``; :class:`ConfigError` for ``s3://`` or a path."""
    bucket = values.get("bucket") or None
    if bucket and (bucket.startswith("s3://") or "/" in bucket):
        raise ConfigError(f"bucket '{bucket}' must be a bare bucket name (no s3://, no /); put paths in 'prefix'")
    return bucket


def region_problems(region: str | None, profile: str | None) -> list[str]:
    """``mcv providers``' readiness line for a missing region, found without importing boto3."""
    if region or configured_region(profile):
        return []
    return ["no AWS region: set -o region=us-east-1 (or AWS_REGION, or a region in your AWS profile)"]


def shared_session(profile: str | None, region: str | None) -> Any:
    """The process's boto3 session for ``profile`` and ``region`` (see the module docstring)."""
    import boto3

    key = (profile, region, *(os.environ.get(name) for name in _SESSION_ENV))
    with _LOCK:
        if key not in _SESSIONS:
            try:
                _SESSIONS[key] = boto3.session.Session(profile_name=profile, region_name=region)
            except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
                raise ConfigError(f"cannot open the AWS session: {exc}; check 'profile' and your AWS config") from exc
        return _SESSIONS[key]


class AwsClients:
    """Clients of the shared session for one profile and region, made on first use, thread-safe."""

    def __init__(self, profile: str | None, region: str | None, user_agent: str = "multicloud-cv") -> None:
        self.profile = profile
        self.requested_region = region
        self.user_agent = user_agent
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        """The shared boto3 session."""
        return shared_session(self.profile, self.requested_region)

    @property
    def region(self) -> str:
        """The region in use; a clear error when neither the settings nor boto3's chain give one."""
        region = self.session.region_name
        if not region:
            raise ConfigError("no AWS region: set -o region=us-east-1 (or AWS_REGION, or a region in your profile)")
        return str(region)

    def client(self, service: str) -> Any:
        """A client with standard retries (throttling and 5xx retried with backoff, 5 attempts in all)."""
        found = self._clients.get(service)
        if found is not None:
            return found
        from botocore.config import Config

        with _LOCK:
            if service not in self._clients:
                config = Config(retries={"mode": "standard", "total_max_attempts": 5}, user_agent_extra=self.user_agent)
                self._clients[service] = self.session.client(service, region_name=self.region, config=config)
            return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    def on_loopback(self, service: str) -> bool:
        """True when ``service``'s endpoint is on loopback (an emulator): the real service never is."""
        host = urlparse(str(self.client(service).meta.endpoint_url)).hostname or ""
        return host in _LOOPBACK

    def has_credentials(self) -> bool:
        """Whether boto3's chain finds credentials (no network call for keys, profiles and files)."""
        return self.session.get_credentials() is not None

    def require_credentials(self) -> None:
        """Raise :class:`ConfigError` with what to do when no credentials are found."""
        if not self.has_credentials():
            raise ConfigError(
                "no AWS credentials found: run `aws configure`, set AWS_PROFILE (or -o profile=...), "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )


def method_name(operation: str) -> str:
    """The boto3 client method of an API operation: ``CreateTrainingJob`` -> ``create_training_job``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@functools.cache
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """botocore's own parameter validation of ``params`` against the service model shipped with botocore.

    No network, no credentials. Raises :class:`BadInput` with botocore's report on one line.
    """
    from botocore.validate import ParamValidator

    shape = _service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        problems = " ".join(report.generate_report().split())
        raise BadInput(f"{operation} request is invalid for the {service} API: {problems}")
