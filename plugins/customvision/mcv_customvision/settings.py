"""The Custom Vision provider's settings, parsed and checked, and the SDK clients they make.

Settings come from ``mcv.toml`` ``[providers.customvision]``, ``MCV_CUSTOMVISION_<KEY>`` and ``-o key=value``
(:mod:`multicloud_cv.config`). Where a key is unset, the environment variables of Microsoft's Custom Vision
quickstarts are read as well (``VISION_TRAINING_ENDPOINT``, ``VISION_TRAINING_KEY``, ``VISION_PREDICTION_ENDPOINT``,
``VISION_PREDICTION_KEY``, ``VISION_PREDICTION_RESOURCE_ID``), so a shell set up for the quickstart works as it is.
Keys are secrets: declared ``secret=True`` (``mcv providers`` shows them redacted) and never put in a message.

Contracts:

* :meth:`Options.parse` raises one :class:`~multicloud_cv.errors.ConfigError` per bad value, naming the key and the
  fix: endpoints must be ``http(s)://host[:port]`` (a trailing ``/`` is dropped; a path such as
  ``/customvision/v3.4-preview/training`` pasted from the portal is refused, since the SDK appends it itself), the
  prediction resource id must be an ARM id of a ``Microsoft.CognitiveServices/accounts`` resource (pains.md A5: a
  subscription id passed instead gives the service's bare "Invalid iteration"), ``training_type`` Regular or
  Advanced, ``budget_hours`` a whole number (Advanced training needs at least 1), ``tier`` F0 or S0.
* :class:`Clients` builds the SDK's training and prediction clients lazily, with ``ApiKeyCredentials`` headers
  ``Training-key`` / ``Prediction-key``; the SDK's own retry policy is left as msrest sets it (it never retries 429:
  :mod:`mcv_customvision.calls` does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mcv_customvision.domains import DEFAULT_DOMAIN
from multicloud_cv.config import Setting, positive_float
from multicloud_cv.errors import ConfigError

SETTINGS = (
    Setting(
        "training_endpoint",
        "the Custom Vision training resource's endpoint, https://<name>.cognitiveservices.azure.com",
    ),
    Setting("training_key", "the training resource's key (sent as the Training-key header)", secret=True),
    Setting("prediction_endpoint", "the prediction resource's endpoint (default: training_endpoint)"),
    Setting("prediction_key", "the prediction resource's key (sent as the Prediction-key header)", secret=True),
    Setting(
        "prediction_resource_id",
        "ARM id of the prediction resource that publishing targets: /subscriptions/<id>/resourceGroups/<group>/"
        "providers/Microsoft.CognitiveServices/accounts/<name>",
    ),
    Setting(
        "domain",
        "domain by name: General, General (compact), Food, Landmarks, Retail (+ compact); for detection General, "
        "General (compact), Logo, Products on Shelves. Only compact domains export",
        default=DEFAULT_DOMAIN,
    ),
    Setting("training_type", "Regular or Advanced (Advanced trains longer on a budget)", default="Regular"),
    Setting("budget_hours", "reserved training budget in hours (Advanced: at least 1; Regular: 0)", default="0"),
    Setting("tier", "pricing tier of the training resource, F0 or S0 (its project, image and tag caps)", default="S0"),
    Setting("project", "project name, created for each job (default: mcv-<job id>)"),
    Setting("publish_name", "name an iteration is published under (default: mcv-<model id>)"),
    Setting("threshold", "probability threshold of the iteration's reported precision and recall", default="0.5"),
    Setting("overlap_threshold", "IoU threshold of the reported detection precision and recall", default="0.3"),
    Setting(
        "store_images",
        "true: predictions keep the image in the project (the /image route); false: no-store",
        default="false",
    ),
    Setting(
        "poll_s",
        "first interval between status calls while waiting (grows to 60 s; a smaller one to 6x itself)",
        default="10",
    ),
    Setting(
        "max_retries", "retries of a throttled (429) or unavailable (5xx) call, honouring Retry-After", default="6"
    ),
)

#: Microsoft's quickstart variables, read where the setting is unset.
QUICKSTART_ENV = {
    "training_endpoint": "VISION_TRAINING_ENDPOINT",
    "training_key": "VISION_TRAINING_KEY",
    "prediction_endpoint": "VISION_PREDICTION_ENDPOINT",
    "prediction_key": "VISION_PREDICTION_KEY",
    "prediction_resource_id": "VISION_PREDICTION_RESOURCE_ID",
}

_ARM_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/Microsoft\.CognitiveServices/accounts/[^/]+$",
    re.IGNORECASE,
)
_PROJECT_NAME = re.compile(r"^[^\x00-\x1f]{1,160}$")
_PUBLISH_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
TRAINING_TYPES = ("Regular", "Advanced")


def _endpoint(value: str, key: str) -> str:
    value = value.strip().rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{key} '{value}' is not an endpoint URL: use https://<resource>.cognitiveservices.azure.com")
    if parsed.path not in ("", "/"):
        raise ConfigError(
            f"{key} '{value}' has a path ({parsed.path}); give the resource's endpoint only "
            "(https://<resource>.cognitiveservices.azure.com): the SDK adds /customvision/... itself"
        )
    return value


def _flag(values: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (values.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}={raw!r} must be true or false")


def _fraction(values: Mapping[str, str], key: str, default: float) -> float:
    raw = values.get(key) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} must be a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}={raw!r} must be a number from 0 to 1")
    return value


@dataclass(frozen=True)
class Options:
    """The settings parsed and checked."""

    training_endpoint: str | None
    training_key: str | None
    prediction_endpoint: str | None
    prediction_key: str | None
    prediction_resource_id: str | None
    domain: str
    training_type: str
    budget_hours: int
    tier: str
    project: str | None
    publish_name: str | None
    threshold: float
    overlap_threshold: float
    store_images: bool
    poll_s: float
    max_retries: int

    @classmethod
    def parse(cls, config: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Options:
        """Read resolved settings (quickstart variables from ``environ``, default ``os.environ``)."""
        env = os.environ if environ is None else environ
        values = {key: config.get(key) or env.get(var, "") for key, var in QUICKSTART_ENV.items()}
        training_endpoint = (
            _endpoint(values["training_endpoint"], "training_endpoint") if values["training_endpoint"] else None
        )
        prediction_endpoint = (
            _endpoint(values["prediction_endpoint"], "prediction_endpoint")
            if values["prediction_endpoint"]
            else training_endpoint
        )
        resource = values["prediction_resource_id"].strip() or None
        if resource is not None and not _ARM_ID.match(resource):
            raise ConfigError(
                f"prediction_resource_id '{resource}' is not the prediction resource's ARM id: copy the resource's "
                "'Resource ID' from its Properties page (/subscriptions/<id>/resourceGroups/<group>/providers/"
                "Microsoft.CognitiveServices/accounts/<name>), not the subscription id"
            )
        training_type = (config.get("training_type") or "Regular").strip()
        matched = [t for t in TRAINING_TYPES if t.lower() == training_type.lower()]
        if not matched:
            raise ConfigError(f"training_type '{training_type}' must be Regular or Advanced")
        raw_budget = (config.get("budget_hours") or "0").strip()
        try:
            budget = int(raw_budget)
        except ValueError:
            raise ConfigError(f"budget_hours={raw_budget!r} must be a whole number of hours") from None
        if budget < 0:
            raise ConfigError(f"budget_hours={raw_budget!r} must be 0 or more")
        if matched[0] == "Advanced" and budget < 1:
            raise ConfigError("training_type Advanced needs budget_hours of at least 1 (-o budget_hours=1)")
        tier = (config.get("tier") or "S0").strip().upper()
        if tier not in ("F0", "S0"):
            raise ConfigError(f"tier '{config.get('tier')}' must be F0 or S0")
        project = (config.get("project") or "").strip() or None
        if project is not None and not _PROJECT_NAME.match(project):
            raise ConfigError("project must be 1-160 printable characters")
        publish = (config.get("publish_name") or "").strip() or None
        if publish is not None and not _PUBLISH_NAME.match(publish):
            raise ConfigError(f"publish_name '{publish}' must be 1-64 letters, digits, '_', '.' or '-'")
        raw_retries = (config.get("max_retries") or "6").strip()
        if not raw_retries.isdigit():
            raise ConfigError(f"max_retries={raw_retries!r} must be a whole number (0: no retries)")
        return cls(
            training_endpoint=training_endpoint,
            training_key=values["training_key"].strip() or None,
            prediction_endpoint=prediction_endpoint,
            prediction_key=values["prediction_key"].strip() or None,
            prediction_resource_id=resource,
            domain=(config.get("domain") or DEFAULT_DOMAIN).strip(),
            training_type=matched[0],
            budget_hours=budget,
            tier=tier,
            project=project,
            publish_name=publish,
            threshold=_fraction(config, "threshold", 0.5),
            overlap_threshold=_fraction(config, "overlap_threshold", 0.3),
            store_images=_flag(config, "store_images", False),
            poll_s=positive_float(config, "poll_s", 10.0),
            max_retries=int(raw_retries),
        )

    def training_problems(self) -> list[str]:
        """What is missing for the training API, each with the fix."""
        problems = []
        if not self.training_endpoint:
            problems.append(
                "training_endpoint is not set: -o training_endpoint=https://<resource>.cognitiveservices.azure.com"
            )
        if not self.training_key:
            problems.append("training_key is not set: set MCV_CUSTOMVISION_TRAINING_KEY (or VISION_TRAINING_KEY)")
        return problems

    def prediction_problems(self) -> list[str]:
        """What is missing for publishing and predicting, each with the fix."""
        problems = []
        if not self.prediction_key:
            problems.append("prediction_key is not set: set MCV_CUSTOMVISION_PREDICTION_KEY (or VISION_PREDICTION_KEY)")
        if not self.prediction_resource_id:
            problems.append(
                "prediction_resource_id is not set: -o prediction_resource_id=/subscriptions/<id>/resourceGroups/"
                "<group>/providers/Microsoft.CognitiveServices/accounts/<prediction resource>"
            )
        return problems


def on_loopback(endpoint: str | None) -> bool:
    """True for an endpoint on 127.0.0.1 / localhost (an emulator: the real service never is)."""
    host = urlparse(endpoint or "").hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


class Clients:
    """The SDK's training and prediction clients for the settings, made on first use."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._training: Any = None
        self._prediction: Any = None

    @property
    def training(self) -> Any:
        """``CustomVisionTrainingClient`` (ConfigError when the endpoint or key is missing)."""
        if self._training is None:
            problems = self.options.training_problems()
            if problems:
                raise ConfigError(problems[0])
            from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
            from msrest.authentication import ApiKeyCredentials

            credentials = ApiKeyCredentials(in_headers={"Training-key": self.options.training_key or ""})
            self._training = CustomVisionTrainingClient(self.options.training_endpoint, credentials)
        return self._training

    @property
    def prediction(self) -> Any:
        """``CustomVisionPredictionClient`` (ConfigError when the endpoint or key is missing)."""
        if self._prediction is None:
            problems = self.options.prediction_problems()[:1] if not self.options.prediction_key else []
            if not self.options.prediction_endpoint:
                problems.insert(0, "prediction_endpoint is not set (nor training_endpoint)")
            if problems:
                raise ConfigError(problems[0])
            from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
            from msrest.authentication import ApiKeyCredentials

            credentials = ApiKeyCredentials(in_headers={"Prediction-key": self.options.prediction_key or ""})
            self._prediction = CustomVisionPredictionClient(self.options.prediction_endpoint, credentials)
        return self._prediction

    def emulated(self) -> bool:
        """True when the training endpoint is on loopback."""
        return on_loopback(self.options.training_endpoint)
