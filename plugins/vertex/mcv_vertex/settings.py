"""The Vertex AI provider's settings, parsed and checked, and the clients they make.

Settings come from ``mcv.toml`` ``[providers.vertex]``, ``MCV_VERTEX_<KEY>`` and ``-o key=value``
(:mod:`multicloud_cv.config`). Credentials are Google's application default credentials (``gcloud auth
application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server); ``project`` defaults to the
one they name. ``api_endpoint`` points the clients elsewhere (``http://127.0.0.1:PORT``: the emulator, reached with
anonymous credentials, as cloud-apis.md 3.6 and 8 found: google-auth always sends authorized-user refreshes to
Google, so offline only anonymous credentials work).

Contracts:

* :meth:`Options.parse` raises one :class:`~multicloud_cv.errors.ConfigError` per bad value, naming the key and the
  fix: a location that is not a region name, a bucket given as a URI, a route other than ``custom`` / ``automl``, a
  scale tier that does not exist, counts that are not whole numbers, a ``fallback`` item that is neither an
  accelerator type nor a location.
* :class:`Clients` makes the GAPIC v1 clients (REST transport) and the Cloud Storage client on first use, each
  with the same credentials and endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from multicloud_cv.config import Setting, positive_float, positive_int
from multicloud_cv.errors import ConfigError

SETTINGS = (
    Setting("project", "Google Cloud project id (default: the application default credentials' project)"),
    Setting("project_number", "the project's number, for the service agents' bucket check (default: looked up)"),
    Setting("location", "Vertex AI region of jobs, models and endpoints", default="us-central1"),
    Setting("bucket", "Cloud Storage bucket for data, the training package and outputs (same region)", required=True),
    Setting("prefix", "object prefix inside the bucket", default="mcv"),
    Setting("route", "custom (our trainer in a CustomJob) or automl (AutoML image training)", default="custom"),
    Setting(
        "scale_tier",
        "BASIC, BASIC_GPU, BASIC_TPU, STANDARD_1, PREMIUM_1 or CUSTOM (default: from --compute: cpu BASIC, "
        "gpu BASIC_GPU, tpu BASIC_TPU)",
    ),
    Setting("machine_type", "machine type of the training pools (CUSTOM tier, or to override a tier)"),
    Setting("accelerator_type", "e.g. NVIDIA_TESLA_T4, NVIDIA_L4, TPU_V3 (the SDK's AcceleratorType names)"),
    Setting("accelerator_count", "accelerators per replica", default="1"),
    Setting("replica_count", "replicas in all (above 1: distributed training)", default="1"),
    Setting("service_account", "service account the job runs as (default: the Vertex AI custom code service agent)"),
    Setting(
        "fallback",
        "on 'Resources are insufficient in region': try these next, comma-separated accelerator types, "
        "locations or ACCELERATOR@location",
    ),
    Setting("capacity_retries", "resubmissions after a capacity stock-out before giving up", default="3"),
    Setting("training_image", "prebuilt training container the package runs in (default by compute kind)"),
    Setting(
        "serving_image",
        "serving container of the custom route (build plugins/vertex/container; default "
        "<location>-docker.pkg.dev/<project>/mcv/mcv-vertex-serve:<version>)",
    ),
    Setting("deploy_machine_type", "machine type of endpoint replicas", default="n1-standard-4"),
    Setting("deploy_accelerator_type", "accelerator of endpoint replicas (none by default)"),
    Setting("min_replica_count", "endpoint replicas at least", default="1"),
    Setting("max_replica_count", "endpoint replicas at most (autoscaling above min)", default="1"),
    Setting("model_type", "AutoML model type (default CLOUD; object detection CLOUD_HIGH_ACCURACY_1)"),
    Setting("budget_milli_node_hours", "AutoML budget (classification 8,000-800,000; detection 20,000-900,000)"),
    Setting("api_endpoint", "Vertex AI API endpoint (default <location>-aiplatform.googleapis.com)"),
    Setting(
        "poll_s",
        "first interval between status calls while waiting (grows to 60 s; a smaller one to 6x itself)",
        default="10",
    ),
)

#: The prebuilt PyTorch training container our package runs in, for every compute kind. Our code needs Python 3.11
#: (``enum.StrEnum``), so the image must be a ``py311`` one (this tag is in public use with Vertex); the package's
#: dependencies lift torch to the local engine's minimum when the image's is older. The GPU image also runs on CPU
#: machines. On TPU machines our trainer runs on the TPU VM's host CPU: the local engine does not use torch_xla.
DEFAULT_TRAINING_IMAGE = "us-docker.pkg.dev/vertex-ai/training/pytorch-gpu.2-2.py311:latest"
TRAINING_IMAGES = {"cpu": DEFAULT_TRAINING_IMAGE, "gpu": DEFAULT_TRAINING_IMAGE, "tpu": DEFAULT_TRAINING_IMAGE}
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Fallback:
    """One alternative after a capacity stock-out: another accelerator, another location, or both."""

    accelerator_type: str | None = None
    location: str | None = None

    def describe(self) -> str:
        return "@".join(part for part in (self.accelerator_type, self.location) if part)


def _fallbacks(raw: str) -> tuple[Fallback, ...]:
    from mcv_vertex.machines import sdk_accelerators

    out = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        accelerator, _, location = item.partition("@")
        if not location and _REGION.match(accelerator):
            accelerator, location = "", accelerator
        if accelerator and accelerator not in sdk_accelerators():
            raise ConfigError(f"fallback item '{item}': '{accelerator}' is neither an accelerator type nor a location")
        if location and not _REGION.match(location):
            raise ConfigError(f"fallback item '{item}': '{location}' is not a location such as us-east1")
        out.append(Fallback(accelerator or None, location or None))
    return tuple(out)


def _project_number(raw: str) -> str | None:
    value = raw.strip()
    if value and not value.isdigit():
        raise ConfigError(f"project_number '{value}' must be the project's number (digits), not its id")
    return value or None


@dataclass(frozen=True)
class Options:
    """The settings parsed and checked."""

    project: str | None
    project_number: str | None
    location: str
    bucket: str | None
    prefix: str
    route: str
    scale_tier: str | None
    machine_type: str | None
    accelerator_type: str | None
    accelerator_count: int
    replica_count: int
    service_account: str | None
    fallback: tuple[Fallback, ...]
    capacity_retries: int
    training_image: str | None
    serving_image: str | None
    deploy_machine_type: str
    deploy_accelerator_type: str | None
    min_replica_count: int
    max_replica_count: int
    model_type: str | None
    budget_milli_node_hours: int | None
    api_endpoint: str | None
    poll_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, config: Mapping[str, str]) -> Options:
        """Read resolved settings; raise :class:`ConfigError` naming the key and the fix."""
        from mcv_vertex.machines import SCALE_TIERS

        location = (config.get("location") or "us-central1").strip()
        if not _REGION.match(location):
            raise ConfigError(f"location '{location}' is not a Vertex AI region such as us-central1")
        bucket = (config.get("bucket") or "").strip() or None
        if bucket is not None:
            if bucket.startswith("gs://"):
                raise ConfigError(f"bucket '{bucket}' must be the bucket's name, without gs://")
            if not _BUCKET.match(bucket):
                raise ConfigError(f"bucket '{bucket}' is not a valid Cloud Storage bucket name")
        route = (config.get("route") or "custom").strip().lower()
        if route not in ("custom", "automl"):
            raise ConfigError(f"route '{route}' must be custom or automl")
        tier = (config.get("scale_tier") or "").strip().upper() or None
        if tier is not None and tier not in SCALE_TIERS:
            raise ConfigError(f"scale_tier '{tier}' must be one of {', '.join(SCALE_TIERS)}")
        low = positive_int(config, "min_replica_count", 1)
        high = positive_int(config, "max_replica_count", 1)
        if high < low:
            raise ConfigError(f"max_replica_count {high} is below min_replica_count {low}")
        budget_raw = (config.get("budget_milli_node_hours") or "").strip()
        endpoint = (config.get("api_endpoint") or "").strip().rstrip("/") or None
        return cls(
            project=(config.get("project") or "").strip() or None,
            project_number=_project_number(config.get("project_number") or ""),
            location=location,
            bucket=bucket,
            prefix=(config.get("prefix") or "mcv").strip("/"),
            route=route,
            scale_tier=tier,
            machine_type=(config.get("machine_type") or "").strip() or None,
            accelerator_type=(config.get("accelerator_type") or "").strip().upper() or None,
            accelerator_count=positive_int(config, "accelerator_count", 1),
            replica_count=positive_int(config, "replica_count", 1),
            service_account=(config.get("service_account") or "").strip() or None,
            fallback=_fallbacks(config.get("fallback") or ""),
            capacity_retries=int(config.get("capacity_retries") or 3),
            training_image=(config.get("training_image") or "").strip() or None,
            serving_image=(config.get("serving_image") or "").strip() or None,
            deploy_machine_type=(config.get("deploy_machine_type") or "n1-standard-4").strip(),
            deploy_accelerator_type=(config.get("deploy_accelerator_type") or "").strip().upper() or None,
            min_replica_count=low,
            max_replica_count=high,
            model_type=(config.get("model_type") or "").strip().upper() or None,
            budget_milli_node_hours=positive_int(config, "budget_milli_node_hours", 1) if budget_raw else None,
            api_endpoint=endpoint,
            poll_s=positive_float(config, "poll_s", 10.0),
        )

    def endpoint(self) -> str:
        """The API endpoint the clients use."""
        return self.api_endpoint or f"{self.location}-aiplatform.googleapis.com"

    def emulated(self) -> bool:
        """True when the API endpoint is on loopback (the emulator)."""
        return (urlparse(self.api_endpoint or "").hostname or "") in _LOOPBACK


class Clients:
    """GAPIC v1 clients (REST transport) and the Cloud Storage client, made on first use."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._made: dict[str, Any] = {}
        self._credentials: Any = None
        self._project: str | None = options.project

    def credentials(self) -> Any:
        """Anonymous credentials for the emulator, else the application default credentials."""
        if self._credentials is None:
            if self.options.emulated():
                from google.auth.credentials import AnonymousCredentials

                self._credentials = AnonymousCredentials()
            else:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    self._credentials, found = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"]
                    )
                except DefaultCredentialsError as exc:
                    raise ConfigError(
                        "no Google credentials: run `gcloud auth application-default login` or set "
                        "GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
                    ) from exc
                self._project = self._project or found
        return self._credentials

    @property
    def project(self) -> str:
        """The project id (the setting, else the credentials')."""
        self.credentials()
        if not self._project:
            raise ConfigError("setting 'project' is not set and the credentials name no project: -o project=ID")
        return self._project

    def parent(self, location: str | None = None) -> str:
        """``projects/P/locations/L``."""
        return f"projects/{self.project}/locations/{location or self.options.location}"

    def _client(self, name: str, location: str | None = None) -> Any:
        key = f"{name}@{location or self.options.location}"
        if key not in self._made:
            from google.api_core.client_options import ClientOptions
            from google.cloud import aiplatform_v1

            endpoint = self.options.api_endpoint or f"{location or self.options.location}-aiplatform.googleapis.com"
            cls = getattr(aiplatform_v1, name)
            self._made[key] = cls(
                credentials=self.credentials(),
                transport="rest",
                client_options=ClientOptions(api_endpoint=endpoint),
            )
        return self._made[key]

    def jobs(self, location: str | None = None) -> Any:
        return self._client("JobServiceClient", location)

    def pipelines(self) -> Any:
        return self._client("PipelineServiceClient")

    def datasets(self) -> Any:
        return self._client("DatasetServiceClient")

    def models(self) -> Any:
        return self._client("ModelServiceClient")

    def endpoints(self) -> Any:
        return self._client("EndpointServiceClient")

    def predictions(self) -> Any:
        return self._client("PredictionServiceClient")

    def storage(self) -> Any:
        """``google.cloud.storage.Client`` (STORAGE_EMULATOR_HOST honoured by the library itself)."""
        if "storage" not in self._made:
            import os

            from google.cloud import storage  # type: ignore[attr-defined]

            if os.environ.get("STORAGE_EMULATOR_HOST"):
                self._made["storage"] = storage.Client(project=self.options.project or "emulated")
            else:
                self._made["storage"] = storage.Client(project=self.project, credentials=self.credentials())
        return self._made["storage"]
