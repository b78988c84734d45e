"""The canonical dataset written as the built-in algorithms' input channels, ready to stage to S3.

One function, :func:`prepare_input`, turns a :class:`~multicloud_cv.datasets.Dataset` into local files
plus the channel list of a CreateTrainingJob request, for one of three layouts (cloud-apis.md 1.6, 1.8):

``recordio``
    channels ``train`` and ``validation``, one ``.rec`` each (``application/x-recordio``), written by
    :mod:`multicloud_cv.datasets.recordio` (classification, multi-hot multi-label, detection label vectors).
    The ``.idx`` files stay local: SageMaker reads every object under a channel's prefix as data.
``images``
    classification: four channels ``train``, ``validation`` (the images) and ``train_lst``,
    ``validation_lst`` (one tab-separated ``.lst`` each), all ``application/x-image``; training and
    validation images sit under different prefixes, as the algorithm requires. Detection: ``train``,
    ``validation`` and ``train_annotation``, ``validation_annotation`` (one JSON per image, same base
    name: :mod:`multicloud_cv.datasets.sagemaker_detection`), content type ``image/jpeg`` or
    ``image/png`` when every image is one of them, else ``application/x-image``.
``manifest``
    channels ``train`` and ``validation`` as augmented manifests (``S3DataType=AugmentedManifestFile``,
    ``AttributeNames=["source-ref", "class" | "bounding-box"]``, ``RecordWrapperType=RecordIO``,
    Pipe mode, ``application/x-recordio`` with ``; label-format=multi-hot`` for multi-label); the images
    are staged under ``images/`` and referenced by their ``s3://`` URIs.

Splits: ``train`` takes the dataset's train images and the unassigned ones; ``validation`` its validation
images, or, when it has none, a seeded stratified tenth of the training images (at least one image of
every label that has two). The ``test`` split never reaches SageMaker: it stays held out for evaluation.

Every key is relative to the job's input prefix (``s3://bucket/prefix/input/<fingerprint>/<mode>/``); the
fingerprint hashes what is written, so an unchanged dataset is staged once and reused by later jobs (the
staging step skips objects already there with the same size and checksum).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import DatasetError

RECORDIO = "application/x-recordio"
IMAGE = "application/x-image"
MODEL = "application/x-sagemaker-model"
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0


@dataclass(frozen=True)
class Channel:
    """One input channel: its name, content type and where its data is (a key under the input prefix or a URI)."""

    name: str
    content_type: str
    key: str = ""
    uri: str | None = None
    s3_data_type: str = "S3Prefix"
    attribute_names: tuple[str, ...] = ()
    record_wrapper: str | None = None

    def s3_uri(self, input_uri: str) -> str:
        """The channel's S3 URI: its own ``uri``, else ``key`` joined to ``input_uri``."""
        return self.uri or f"{input_uri.rstrip('/')}/{self.key}"

    def request(self, input_uri: str) -> dict[str, Any]:
        """The ``InputDataConfig`` entry of a CreateTrainingJob request."""
        source: dict[str, Any] = {
            "S3DataType": self.s3_data_type,
            "S3Uri": self.s3_uri(input_uri),
            "S3DataDistributionType": "FullyReplicated",
        }
        if self.attribute_names:
            source["AttributeNames"] = list(self.attribute_names)
        entry: dict[str, Any] = {
            "ChannelName": self.name,
            "DataSource": {"S3DataSource": source},
            "ContentType": self.content_type,
            "CompressionType": "None",
        }
        if self.record_wrapper:
            entry["RecordWrapperType"] = self.record_wrapper
        return entry


@dataclass
class PreparedInput:
    """What :func:`prepare_input` made: local files to stage (``{path: key}``), channels, counts."""

    mode: str
    training_input_mode: str
    channels: list[Channel]
    files: dict[Path, str]
    num_training_samples: int
    num_validation_samples: int
    max_boxes: int
    label_format: str | None
    fingerprint: str
    notes: list[str] = field(default_factory=list)

    @property
    def content_types(self) -> dict[str, str]:
        """``{channel name: content type}`` (for preflight)."""
        return {channel.name: channel.content_type for channel in self.channels}


def training_splits(dataset: Dataset, seed: int = SPLIT_SEED) -> tuple[list[ImageRecord], list[ImageRecord], bool]:
    """``(train, validation, carved)``: the images sent to each channel; ``carved`` when validation was made here."""
    train = [i for i in dataset.images if i.split in (None, "train")]
    validation = [i for i in dataset.images if i.split == "validation"]
    if validation:
        return [replace(i, split="train") for i in train], validation, False
    by_label: dict[int, list[int]] = {}
    for position, image in enumerate(train):
        key = image.labels[0] if image.labels else (image.boxes[0].label if image.boxes else -1)
        by_label.setdefault(key, []).append(position)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for positions in by_label.values():
        if len(positions) < 2:
            continue
        rng.shuffle(positions)
        chosen.update(positions[: max(1, round(len(positions) * VALIDATION_FRACTION))])
    train_out = [replace(image, split="train") for n, image in enumerate(train) if n not in chosen]
    validation_out = [replace(image, split="validation") for n, image in enumerate(train) if n in chosen]
    return train_out, validation_out, True


def prepare_input(
    dataset: Dataset,
    task: str,
    mode: str,
    workdir: Path,
    input_uri: Callable[[str], str],
    label_format: str = "multi-hot",
) -> PreparedInput:
    """Write ``dataset``'s training channels for ``mode`` under ``workdir``; nothing is uploaded here.

    ``input_uri(fingerprint)`` gives the S3 prefix the files will be staged under (manifest lines need
    the images' final URIs). Raises :class:`DatasetError` when a split is empty or an image cannot be
    written in the layout (e.g. a classification image without exactly one label).
    """
    train, validation, carved = training_splits(dataset)
    if not train:
        raise DatasetError(f"{dataset.root}: no training images (every image is in the test split)")
    if not validation:
        raise DatasetError(
            f"{dataset.root}: the built-in algorithms need a validation channel and no label has two training "
            "images to spare; add images or a validation split (`mcv dataset split --val 0.1`)"
        )
    part = replace(dataset, images=train + validation)
    fingerprint = _fingerprint(part, task, mode, label_format)
    multilabel = task == "multilabel"
    notes = [f"validation: {len(validation)} images carved from the training split (seeded)"] if carved else []
    held_out = len(dataset.split("test"))
    if held_out:
        notes.append(f"test: {held_out} images held out for evaluation, not sent to training")
    prepared = PreparedInput(
        mode=mode,
        training_input_mode="Pipe" if mode == "manifest" else "File",
        channels=[],
        files={},
        num_training_samples=len(train),
        num_validation_samples=len(validation),
        max_boxes=max((len(i.boxes) for i in part.images), default=0),
        label_format=label_format if multilabel else None,
        fingerprint=fingerprint,
        notes=notes,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    if mode == "recordio":
        _recordio(part, workdir, prepared, label_format)
    elif mode == "images" and task == "detection":
        _detection_images(part, workdir, prepared)
    elif mode == "images":
        _lst_images(part, workdir, prepared, label_format)
    elif mode == "manifest":
        _manifest(part, task, workdir, prepared, input_uri(fingerprint), label_format)
    else:
        raise DatasetError(f"unknown input mode '{mode}'; use recordio, images or manifest")
    return prepared


def _fingerprint(dataset: Dataset, task: str, mode: str, label_format: str) -> str:
    digest = hashlib.sha256(json.dumps([task, mode, label_format, dataset.classes]).encode())
    for image in dataset.images:
        path = dataset.absolute(image)
        try:
            stat = path.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            stamp = []
        row = [str(path), image.labels, [list(_box(b)) for b in image.boxes], image.split, stamp]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()[:16]


def _box(box: Any) -> tuple[float, ...]:
    return (box.label, box.x_min, box.y_min, box.x_max, box.y_max)


def _split(dataset: Dataset, name: str) -> Dataset:
    return replace(dataset, images=dataset.split(name))


def _recordio(dataset: Dataset, workdir: Path, prepared: PreparedInput, label_format: str) -> None:
    from multicloud_cv.datasets.recordio import write_recordio

    for name in ("train", "validation"):
        rec = workdir / name / f"{name}.rec"
        rec.parent.mkdir(parents=True, exist_ok=True)
        (workdir / "_index").mkdir(exist_ok=True)
        write_recordio(_split(dataset, name), rec, workdir / "_index" / f"{name}.idx", label_format=label_format)
        prepared.files[rec] = f"{name}/{rec.name}"
        prepared.channels.append(Channel(name, RECORDIO, key=f"{name}/"))


def _staged_keys(dataset: Dataset) -> dict[int, tuple[Path, str]]:
    """``{position: (local file, key)}`` for the images, keys as :func:`staging.dataset_files` names them."""
    from multicloud_cv.staging import dataset_files

    files = dataset_files(dataset)
    out = {}
    for position, image in enumerate(dataset.images):
        local = dataset.absolute(image)
        if local not in files:
            raise DatasetError(f"image {image.path} is not a local file; download it before training on SageMaker")
        out[position] = (local, files[local])
    return out


def _lst_images(dataset: Dataset, workdir: Path, prepared: PreparedInput, label_format: str) -> None:
    from multicloud_cv.datasets.lst import write_lst

    for name in ("train", "validation"):
        part = _split(dataset, name)
        keys = _staged_keys(part)
        for local, key in keys.values():
            prepared.files[local] = f"{name}/{key}"
        renamed = replace(part, images=[replace(img, path=keys[n][1]) for n, img in enumerate(part.images)])
        lst = workdir / f"{name}_lst" / f"{name}.lst"
        lst.parent.mkdir(parents=True, exist_ok=True)
        write_lst(renamed, lst, label_format=label_format, write_classes=False)
        prepared.files[lst] = f"{name}_lst/{lst.name}"
        prepared.channels.append(Channel(name, IMAGE, key=f"{name}/"))
        prepared.channels.append(Channel(f"{name}_lst", IMAGE, key=f"{name}_lst/"))


def image_content_type(paths: Sequence[str]) -> str:
    """``image/jpeg`` or ``image/png`` when every path has that suffix, else ``application/x-image``."""
    suffixes = {Path(p).suffix.lower() for p in paths}
    if suffixes <= {".jpg", ".jpeg"}:
        return "image/jpeg"
    if suffixes == {".png"}:
        return "image/png"
    return IMAGE


def _detection_images(dataset: Dataset, workdir: Path, prepared: PreparedInput) -> None:
    from multicloud_cv.datasets import sagemaker_detection

    out = workdir / "detection"
    sagemaker_detection.write(dataset, out)
    for name in ("train", "validation"):
        images = sorted(p for p in (out / name).iterdir() if p.is_file())
        kind = image_content_type([p.name for p in images])
        for folder in (name, f"{name}_annotation"):
            for path in sorted((out / folder).iterdir()):
                if path.is_file():
                    prepared.files[path] = f"{folder}/{path.name}"
            prepared.channels.append(Channel(folder, kind, key=f"{folder}/"))


def _manifest(
    dataset: Dataset, task: str, workdir: Path, prepared: PreparedInput, input_uri: str, label_format: str
) -> None:
    from multicloud_cv.datasets import augmented_manifest

    keys = _staged_keys(dataset)
    uris = {}
    for position, (local, key) in keys.items():
        prepared.files[local] = f"images/{key}"
        uris[dataset.images[position].path] = f"{input_uri.rstrip('/')}/images/{key}"
    out = workdir / "manifests"
    augmented_manifest.write(
        dataset,
        out,
        image_ref=lambda image: uris[image.path],
        label_format=label_format if task == "multilabel" else "multi-hot",
    )
    attributes = tuple(augmented_manifest.attribute_names(task))
    content_type = RECORDIO + (f"; label-format={label_format}" if task == "multilabel" else "")
    for name in ("train", "validation"):
        manifest = out / f"{name}.manifest"
        prepared.files[manifest] = f"manifests/{manifest.name}"
        prepared.channels.append(
            Channel(
                name,
                content_type,
                key=f"manifests/{manifest.name}",
                s3_data_type="AugmentedManifestFile",
                attribute_names=attributes,
                record_wrapper="RecordIO",
            )
        )
