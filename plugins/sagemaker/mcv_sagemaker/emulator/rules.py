"""What the built-in image-classification and object-detection algorithms accept, and in whose words they refuse.

Two layers, as on the real service:

* The API refuses at ``CreateTrainingJob`` (``ValidationException``, :func:`create_problems`): no
  ``AlgorithmSpecification.TrainingImage`` or ``ResourceConfig`` (botocore's model no longer marks them
  required; the built-ins still need them, cloud-apis.md 1.2), an image that is not a built-in algorithm's ECR
  image of the job's region, an augmented manifest outside Pipe mode or without ``AttributeNames``
  (cloud-apis.md 1.6, SMDG ``augmented-manifest.md``), and an ``S3Prefix`` with no objects: the service's text
  of pains.md S1 ("No S3 objects found under S3 URL ...").
* The container refuses when it starts (the job walks to ``Failed`` with a ``FailureReason``,
  :func:`channel_error` here and :func:`mcv_sagemaker.algorithms.container_error` for hyperparameters):
  channel names and content types are checked as the algorithms' JSON schema does ("Unable to initialize the
  algorithm. Failed to validate input data configuration. (caused by ValidationError)" then the jsonschema
  phrase, e.g. "Additional properties are not allowed ('x' was unexpected)"), CPU training instances
  (cloud-apis.md 1.6/1.8: GPU only). The data rules (empty .rec, bad .lst, manifest attributes, image counts
  under ``mini_batch_size``, incremental-training mismatches) are in :mod:`.training`, which reads the data.

Input layouts (cloud-apis.md 1.6, 1.8): RecordIO (``train``/``validation``, ``application/x-recordio``; with
Pipe mode ``S3DataDistributionType=FullyReplicated``); image files in File mode (image-classification:
``train``, ``validation``, ``train_lst``, ``validation_lst``; object-detection: ``train``, ``validation``,
``train_annotation``, ``validation_annotation``; content type ``application/x-image``, which the developer
guide uses throughout, or ``image/png`` / ``image/jpeg``, which the algorithms' pages also list); augmented manifest
(``train``/``validation``, ``S3DataType=AugmentedManifestFile``, ``RecordWrapperType=RecordIO``, Pipe mode,
``application/x-recordio`` with an optional ``; label-format=multi-hot|class-id``); plus the optional
incremental-training channel ``model`` (``application/x-sagemaker-model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mcv_sagemaker.emulator.protocol import missing_member, validation_error

IMAGE_CLASSIFICATION = "image-classification"
OBJECT_DETECTION = "object-detection"
ALGORITHMS = (IMAGE_CLASSIFICATION, OBJECT_DETECTION)

RECORDIO = "application/x-recordio"
X_IMAGE = "application/x-image"
MODEL_CONTENT_TYPE = "application/x-sagemaker-model"
IMAGE_TYPES = (X_IMAGE, "image/png", "image/jpeg")

IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.(?P<domain>amazonaws\.com(?:\.cn)?|[a-z0-9.-]+)"
    r"/(?P<repository>[a-z0-9._/-]+?)(?::(?P<tag>[A-Za-z0-9._-]+)|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

SCHEMA_HEAD = (
    "ClientError: Unable to initialize the algorithm. Failed to validate input data configuration. "
    "(caused by ValidationError)\n\nCaused by: "
)

#: Channels each algorithm's schema knows.
CHANNELS = {
    IMAGE_CLASSIFICATION: ("train", "validation", "train_lst", "validation_lst", "model"),
    OBJECT_DETECTION: ("train", "validation", "train_annotation", "validation_annotation", "model"),
}

#: The companion channels of the image-file layout.
SIDE_CHANNELS = {
    IMAGE_CLASSIFICATION: ("train_lst", "validation_lst"),
    OBJECT_DETECTION: ("train_annotation", "validation_annotation"),
}


def algorithm_of_image(image: str, region: str) -> str:
    """The built-in algorithm an ECR image URI names (its repository), checked against the job's region.

    Any registry account is accepted (each region has its own); the region in the URI must be the job's.
    Raises ``ValidationException`` otherwise.
    """
    match = IMAGE_URI.match(image.strip())
    if match is None:
        raise validation_error(
            f"The training image '{image}' is not a valid Amazon ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)."
        )
    if match["region"] != region:
        raise validation_error(
            f"The training image '{image}' is in region {match['region']}, but the job runs in {region}. "
            f"Use the image of the algorithm in {region}."
        )
    repository = match["repository"].rsplit("/", 1)[-1]
    if repository not in ALGORITHMS:
        raise validation_error(
            f"The image '{image}' is not a built-in algorithm this emulator runs; repository "
            f"'{repository}' is not one of {', '.join(ALGORITHMS)}."
        )
    return repository


def input_mode(params: dict[str, Any], channel: dict[str, Any]) -> str:
    """A channel's input mode: its own ``InputMode``, else the job's ``TrainingInputMode`` (default File)."""
    spec = params.get("AlgorithmSpecification") or {}
    return str(channel.get("InputMode") or spec.get("TrainingInputMode") or "File")


def source(channel: dict[str, Any]) -> dict[str, Any]:
    """The channel's ``S3DataSource`` (empty for other data sources)."""
    return dict((channel.get("DataSource") or {}).get("S3DataSource") or {})


def create_problems(params: dict[str, Any], region: str) -> str:
    """Check a CreateTrainingJob request as the API does for the built-ins; return the algorithm.

    Raises ``ValidationException`` for the first problem (S3 checks come later, in the control plane).
    """
    spec = params.get("AlgorithmSpecification")
    if not spec:
        raise missing_member("algorithmSpecification")
    image = spec.get("TrainingImage")
    if not image:
        if spec.get("AlgorithmName"):
            raise validation_error(
                f"Algorithm '{spec['AlgorithmName']}' was not found. The emulator runs the built-in algorithms "
                "by their TrainingImage only."
            )
        raise missing_member("algorithmSpecification.trainingImage")
    if not spec.get("TrainingInputMode"):
        raise missing_member("algorithmSpecification.trainingInputMode")
    algorithm = algorithm_of_image(str(image), region)
    resources = params.get("ResourceConfig")
    if not resources:
        raise missing_member("resourceConfig")
    if not resources.get("InstanceType") and not resources.get("InstanceGroups"):
        raise missing_member("resourceConfig.instanceType")
    if resources.get("InstanceType") and not resources.get("InstanceCount"):
        raise missing_member("resourceConfig.instanceCount")
    channels = params.get("InputDataConfig") or []
    names = [str(c.get("ChannelName")) for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise validation_error(f"Channel names must be unique; '{duplicates[0]}' is given more than once.")
    for channel in channels:
        data = source(channel)
        if not data:
            raise validation_error(
                f"Channel '{channel.get('ChannelName')}': the built-in algorithms read S3 data sources only "
                "(DataSource.S3DataSource)."
            )
        if data.get("S3DataType") == "AugmentedManifestFile":
            if not data.get("AttributeNames"):
                raise validation_error(
                    f"AttributeNames must be provided when S3DataType is AugmentedManifestFile "
                    f"(channel '{channel.get('ChannelName')}')."
                )
            mode = input_mode(params, channel)
            if mode != "Pipe":
                raise validation_error(
                    f"Augmented manifest files are supported only with Pipe input mode; channel "
                    f"'{channel.get('ChannelName')}' uses {mode}."
                )
    return algorithm


def no_objects_message(uri: str, region: str, role_arn: str, bucket: str) -> str:
    """The service's text for an S3 prefix with no objects (pains.md S1)."""
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket '
        f"exists in the selected region ({region}), that objects exist under that S3 prefix, and that the role "
        f'"{role_arn}" has "s3:ListBucket" permissions on bucket "{bucket}".'
    )


@dataclass(frozen=True)
class Layout:
    """How the job's data is laid out: ``recordio``, ``images`` or ``manifest``, and the train content type."""

    kind: str
    content_type: str
    label_format: str | None = None


def _base(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _label_format(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "label-format":
            return value.strip()
    return None


def _schema(phrase: str) -> str:
    return SCHEMA_HEAD + phrase


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return _schema(f"'{value}' is not one of {list(allowed)}")


def channel_error(algorithm: str, params: dict[str, Any]) -> tuple[Layout | None, str | None]:
    """``(layout, None)`` when the container accepts the channels, else ``(None, FailureReason)``."""
    channels = {str(c["ChannelName"]): c for c in params.get("InputDataConfig") or []}
    known = CHANNELS[algorithm]
    extra = sorted(name for name in channels if name not in known)
    if extra:
        listed = ", ".join(repr(n) for n in extra)
        return None, _schema(
            f"Additional properties are not allowed ({listed} {'was' if len(extra) == 1 else 'were'} unexpected)"
        )
    for name in ("train", "validation"):
        if name not in channels:
            return None, _schema(f"'{name}' is a required property")
    if "model" in channels:
        content_type = str(channels["model"].get("ContentType") or "")
        if _base(content_type) != MODEL_CONTENT_TYPE:
            return None, _one_of(content_type, (MODEL_CONTENT_TYPE,))
    train = channels["train"]
    train_type = str(train.get("ContentType") or "")
    manifest = source(train).get("S3DataType") == "AugmentedManifestFile"
    if manifest:
        for name in ("train", "validation"):
            channel = channels[name]
            content_type = str(channel.get("ContentType") or "")
            if _base(content_type) != RECORDIO:
                return None, _one_of(content_type, (RECORDIO,))
            if source(channel).get("S3DataType") != "AugmentedManifestFile":
                return None, _schema(
                    f"channel '{name}' must be an AugmentedManifestFile like channel 'train' (got "
                    f"{source(channel).get('S3DataType')})"
                )
            if channel.get("RecordWrapperType") != "RecordIO":
                # pains.md S5 (#4056): without the RecordIO wrapper the pipe carries bare JSON lines.
                return (
                    None,
                    "ClientError: Unable to parse record. Please make sure input data is in correct recordio format.",
                )
        side = [n for n in SIDE_CHANNELS[algorithm] if n in channels]
        if side:
            return None, _schema(f"Additional properties are not allowed ('{side[0]}' was unexpected)")
        return Layout("manifest", train_type, _label_format(train_type)), None
    allowed = (RECORDIO, *IMAGE_TYPES)
    if _base(train_type) not in allowed:
        return None, _one_of(train_type, allowed)
    if _base(train_type) == RECORDIO:
        for name in ("train", "validation"):
            content_type = str(channels[name].get("ContentType") or "")
            if _base(content_type) != RECORDIO:
                return None, _one_of(content_type, (RECORDIO,))
            distribution = source(channels[name]).get("S3DataDistributionType", "FullyReplicated")
            if input_mode(params, channels[name]) == "Pipe" and distribution != "FullyReplicated":
                # cloud-apis.md 1.6: Pipe mode with RecordIO needs the whole data set on every instance.
                return None, (
                    f"ClientError: S3DataDistributionType must be FullyReplicated for RecordIO data in Pipe mode "
                    f"(channel '{name}' uses {distribution})."
                )
        side = [n for n in SIDE_CHANNELS[algorithm] if n in channels]
        if side:
            return None, _schema(f"Additional properties are not allowed ('{side[0]}' was unexpected)")
        return Layout("recordio", train_type, _label_format(train_type)), None
    for name in ("validation", *SIDE_CHANNELS[algorithm]):
        if name not in channels:
            return None, _schema(f"'{name}' is a required property")
        content_type = str(channels[name].get("ContentType") or "")
        if _base(content_type) not in IMAGE_TYPES:
            return None, _one_of(content_type, IMAGE_TYPES)
    for name in ("train", "validation", *SIDE_CHANNELS[algorithm]):
        mode = input_mode(params, channels[name])
        if mode == "Pipe":
            return None, (
                f"ClientError: Pipe input mode is not supported for image files (channel '{name}'); use File mode "
                "or RecordIO."
            )
    return Layout("images", train_type), None


def instance_error(algorithm: str, params: dict[str, Any]) -> str | None:
    """The refusal of a CPU training instance (the built-ins train on GPU families only)."""
    from mcv_sagemaker.algorithms import TRAINING_INSTANCE_FAMILIES

    instance = str((params.get("ResourceConfig") or {}).get("InstanceType") or "")
    if not instance:
        return None
    family = instance.removeprefix("ml.").split(".")[0]
    families = TRAINING_INSTANCE_FAMILIES.get(algorithm, ())
    gpu_like = family.startswith(("p", "g"))
    if family in families or gpu_like:
        return None
    return (
        f"ClientError: The {algorithm} algorithm trains on GPU instances only; {instance} has no GPU "
        f"(use one of the {', '.join(families)} instance families, e.g. ml.p3.2xlarge)."
    )
