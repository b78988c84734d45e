"""A training job's life in the emulator: download the channels, check them as the container does, train, upload.

:class:`TrainingRunner` runs in one background thread per job and walks the job through the states of
cloud-apis.md 1.3: ``InProgress`` with SecondaryStatus ``Starting`` -> ``Downloading`` -> ``Training`` ->
``Uploading`` -> ``Completed`` (each at least ``pace`` seconds), or ``Failed`` with a ``FailureReason``, or,
after StopTrainingJob, ``Stopping`` -> ``Stopped`` (``MaxRuntimeExceeded`` when ``StoppingCondition.
MaxRuntimeInSeconds`` runs out). ``TrainingStartTime`` is stamped when the data download starts, as the
service does once the instances are up.

What the container would do, it does with this project's own code:

* Channels are downloaded from S3 (moto) into ``<workdir>/input/data/<channel>/``, the container's
  ``/opt/ml/input/data`` layout; an augmented manifest's ``source-ref`` images are downloaded too and the
  manifest is rewritten with only the ``AttributeNames`` (what the pipe would carry).
* Channels are read with :mod:`multicloud_cv.datasets` (``recordio.read_recordio``, ``lst.read_lst`` with the
  image channel as root, ``augmented_manifest.read``, ``sagemaker_detection.read``). Class names do not travel
  in RecordIO or .lst files: classes are ``"0"`` .. ``"num_classes-1"``.
* The container's refusals become ``Failed`` with its words (pains.md S1-S5): hyperparameters through
  :func:`mcv_sagemaker.algorithms.container_error`, channels through :func:`.rules.channel_error`, and here
  "Unable to start training. Empty .rec file in train channel.", "Invalid lst file in the train channel.",
  "Got empty batch from pipe ...", "The number of input images must be bigger or equal to the
  mini_batch_size.", "Not enough label packed in img_list or rec file.", the RecordIO magic-number text and
  the incremental-training checks (``num_layers``/``image_shape``/``num_classes``, or ``base_network``/
  ``num_classes``, must match the model in the ``model`` channel). An error while training is
  ``AlgorithmError: <error>``.
* Training is the local provider's engine in this thread, through the shared
  :mod:`multicloud_cv.emulation.training`: image-classification trains ``small_cnn`` for ``min(epochs,
  max_epochs)`` epochs at ``min(image_shape, max_image_size)`` pixels; object-detection trains the FCOS
  detector for ``max_steps`` steps at most, batch 4. The caps are written to the job's log.
  StopTrainingJob really stops it (the engine polls the stop flag every few batches, the detector every
  step).
* ``<S3OutputPath>/<job>/output/model.tar.gz`` holds ``model.onnx`` (+ the engine's ``labels.json`` and
  metrics), ``model-shapes.json`` (``[{"shape": [batch, 3, H, W], "name": "data"}]`` as the MXNet artifacts
  have), ``hyperparameters.json`` (the job's, for incremental-training checks) and ``emulator.json``
  (algorithm, task, classes, image size: what the endpoint needs).
* ``FinalMetricDataList``: image-classification ``validation:accuracy`` (the engine's best epoch) and
  ``train:accuracy`` (the exported model on the training images); object-detection ``validation:mAP``
  (mAP at IoU 0.5 of the exported detector on the validation images, by :mod:`multicloud_cv.evaluation_detection`).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_sagemaker.emulator.rules import (
    IMAGE_CLASSIFICATION,
    OBJECT_DETECTION,
    Layout,
    channel_error,
    instance_error,
    source,
)
from mcv_sagemaker.emulator.store import TrainingJob, now
from multicloud_cv.emulation import training as kit
from multicloud_cv.emulation.aws import S3, split_uri
from multicloud_cv.emulation.training import Limits

if TYPE_CHECKING:
    from mcv_sagemaker.emulator.logs import LogStream
    from multicloud_cv.datasets.model import Dataset, ImageRecord

log = logging.getLogger(__name__)

RECORDIO_MAGIC = b"\x0a\x23\xd7\xce"
TRAIN_ACCURACY_IMAGES = 512

#: The hyperparameters an incremental-training job must share with its base model (cloud-apis.md 1.6, 1.8).
INCREMENTAL_KEYS = {
    IMAGE_CLASSIFICATION: ("num_layers", "image_shape", "num_classes"),
    OBJECT_DETECTION: ("base_network", "num_classes"),
}


class ContainerFailure(Exception):
    """The container stops with this ``FailureReason``."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class StopRequested(Exception):
    """StopTrainingJob, MaxRuntimeInSeconds or the emulator shutting down."""


class TrainingRunner:
    """Runs one training job (see the module docstring); :meth:`run` is the thread's target."""

    def __init__(
        self,
        job: TrainingJob,
        s3: S3,
        workdir: Path,
        limits: Limits,
        log_stream: LogStream,
        closing: threading.Event,
    ) -> None:
        self.job = job
        self.s3 = s3
        self.workdir = workdir
        self.limits = limits
        self.logs = log_stream
        self.closing = closing
        self.params = job.request
        self.algorithm = job.algorithm
        self.hyperparameters = {str(k): str(v) for k, v in (job.request.get("HyperParameters") or {}).items()}
        self.data_dir = workdir / "input" / "data"

    # ------------------------------------------------------------------------------------------ control

    def _should_stop(self) -> bool:
        if self.closing.is_set() or self.job.stop.is_set():
            return True
        limit = (self.params.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        start = self.job.training_start
        if limit and start is not None and time.time() - start > float(limit):
            self.job.stop_reason = "MaxRuntimeExceeded"
            return True
        return False

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self._should_stop():
                raise StopRequested()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.job.stop.wait(min(left, 0.05))

    def run(self) -> None:
        """Walk the job to a terminal state; never raises."""
        job = self.job
        try:
            self._pause(job.pace)
            with job.lock:
                job.training_start = now()
            job.move("Downloading")
            started = time.monotonic()
            self._download()
            self._pause(max(0.0, job.pace - (time.monotonic() - started)))
            job.move("Training")
            started = time.monotonic()
            self.logs.write(f"Running the emulated {self.algorithm} container (multicloud-cv local engine)")
            self._train()
            self._pause(max(0.0, job.pace - (time.monotonic() - started)))
            job.move("Uploading")
            started = time.monotonic()
            self._upload()
            self._pause(max(0.0, job.pace - (time.monotonic() - started)))
            job.finish("Completed", "Completed")
            self.logs.write(f"Training job completed: {job.model_artifacts}")
        except StopRequested:
            self._stopped()
        except ContainerFailure as failure:
            if failure.detail:
                self.logs.write(failure.detail)
            self.logs.write(failure.reason)
            job.finish("Failed", "Failed", failure.reason)
        except Exception as exc:  # the job's last word: the service reports algorithm errors this way
            log.debug("training job %s failed", job.name, exc_info=True)
            self.logs.write(f"Traceback (most recent call last): {type(exc).__name__}: {exc}")
            job.finish("Failed", "Failed", f"AlgorithmError: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(self.workdir / "input", ignore_errors=True)
            shutil.rmtree(self.workdir / "scratch", ignore_errors=True)

    def _stopped(self) -> None:
        job = self.job
        if self.closing.is_set() and not job.stop.is_set():
            job.finish("Stopped", "Stopped")
            return
        if job.stop_reason == "MaxRuntimeExceeded":
            self.logs.write("MaxRuntimeInSeconds exceeded: stopping the training job")
            job.finish("Stopped", "MaxRuntimeExceeded")
            return
        self.logs.write("Received a stop request: stopping the training job")
        self.closing.wait(job.pace)  # Stopping takes a moment on the service too
        job.finish("Stopped", "Stopped")

    # ----------------------------------------------------------------------------------------- download

    def _download(self) -> None:
        self.logs.write("Downloading input data")
        for channel in self.params.get("InputDataConfig") or []:
            name = str(channel["ChannelName"])
            data = source(channel)
            target = self.data_dir / name
            target.mkdir(parents=True, exist_ok=True)
            kind = data.get("S3DataType", "S3Prefix")
            uri = str(data.get("S3Uri", ""))
            if kind == "AugmentedManifestFile":
                self._download_manifest(name, uri, [str(a) for a in data.get("AttributeNames") or []], target)
            elif kind == "ManifestFile":
                self._download_manifest_file(uri, target)
            else:
                self._download_prefix(uri, target)
            if self._should_stop():
                raise StopRequested()

    def _fetch(self, bucket: str, key: str, path: Path) -> None:
        try:
            self.s3.download(bucket, key, path)
        except Exception as exc:
            raise ContainerFailure(
                f"ClientError: Data download failed:Could not download s3://{bucket}/{key}. "
                "Please ensure the object exists and the role has s3:GetObject permission on it."
            ) from exc

    def _download_prefix(self, uri: str, target: Path) -> None:
        bucket, prefix = split_uri(uri)
        for key, _size in self.s3.list(bucket, prefix):
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            self._fetch(bucket, key, target / relative)

    def _download_manifest_file(self, uri: str, target: Path) -> None:
        bucket, key = split_uri(uri)
        path = self.workdir / "scratch" / "manifest.json"
        self._fetch(bucket, key, path)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
            prefix = str(entries[0]["prefix"])
            keys = [str(k) for k in entries[1:]]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ContainerFailure(f"ClientError: Invalid manifest file {uri}: {exc}") from exc
        source_bucket, source_prefix = split_uri(prefix)
        for relative in keys:
            self._fetch(source_bucket, source_prefix + relative, target / relative)

    def _download_manifest(self, channel: str, uri: str, attributes: list[str], target: Path) -> None:
        bucket, key = split_uri(uri)
        raw = self.workdir / "scratch" / f"{channel}.manifest"
        self._fetch(bucket, key, raw)
        lines_out: list[str] = []
        for number, line in enumerate(raw.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ContainerFailure(
                    "ClientError: Unable to parse record. Please make sure input data is in correct recordio format.",
                    detail=f"{uri} line {number}: not JSON ({exc})",
                ) from exc
            missing = [name for name in attributes if name not in obj]
            if missing:
                # pains.md S5 (aws/amazon-sagemaker-examples #1283)
                raise ContainerFailure(
                    "ClientError: Got empty batch from pipe. Please check that the AttributeNames matches "
                    "attributes names in the augmented manifest.",
                    detail=f"{uri} line {number} has no attribute {missing[0]!r} (AttributeNames {attributes})",
                )
            reference = attributes[0]
            value = obj[reference]
            if not isinstance(value, str) or not value.startswith("s3://"):
                raise ContainerFailure(
                    f"ClientError: Data download failed:The value of '{reference}' on line {number} of {uri} "
                    "is not an S3 URI."
                )
            image_bucket, image_key = split_uri(value)
            local = target / "refs" / image_bucket / image_key
            if not local.exists():
                self._fetch(image_bucket, image_key, local)
            lines_out.append(json.dumps({**{name: obj[name] for name in attributes}, reference: str(local)}))
        (target / f"{channel}.manifest").write_text("\n".join(lines_out) + ("\n" if lines_out else ""), "utf-8")

    # ---------------------------------------------------------------------------------------- container

    def _effective(self) -> dict[str, str]:
        from mcv_sagemaker.algorithms import defaults

        merged = defaults(self.algorithm)
        merged.update(self.hyperparameters)
        return merged

    def _classes(self) -> list[str]:
        return [str(i) for i in range(int(self._effective()["num_classes"]))]

    def _check_container(self) -> Layout:
        from mcv_sagemaker.algorithms import container_error

        job = self.job
        if job.injected_failure:
            raise ContainerFailure(job.injected_failure)
        problem = instance_error(self.algorithm, self.params)
        if problem:
            raise ContainerFailure(problem)
        channels = {str(c["ChannelName"]): c for c in self.params.get("InputDataConfig") or []}
        train_type = str((channels.get("train") or {}).get("ContentType") or "") or None
        problem = container_error(self.algorithm, self.hyperparameters, content_type=train_type)
        if problem:
            raise ContainerFailure(problem)
        layout, problem = channel_error(self.algorithm, self.params)
        if problem or layout is None:
            raise ContainerFailure(problem or "ClientError: Failed to validate input data configuration.")
        return layout

    def _train(self) -> None:
        layout = self._check_container()
        merged = self._effective()
        dataset = self._read(layout)
        self._check_data(dataset, merged)
        self._check_incremental(merged)
        if self._should_stop():
            raise StopRequested()
        model_dir = self.workdir / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        if self.algorithm == IMAGE_CLASSIFICATION:
            info = self._train_classifier(dataset, merged, model_dir)
        else:
            info = self._train_detector(dataset, merged, model_dir)
        (model_dir / "hyperparameters.json").write_text(json.dumps(self.hyperparameters, indent=1) + "\n", "utf-8")
        (model_dir / "emulator.json").write_text(json.dumps(info, indent=1) + "\n", "utf-8")

    # -------------------------------------------------------------------------------------------- read

    def _read(self, layout: Layout) -> Dataset:
        if layout.kind == "recordio":
            parts = [self._read_recordio(name) for name in ("train", "validation")]
        elif layout.kind == "manifest":
            parts = [self._read_manifest(name, layout) for name in ("train", "validation")]
        elif self.algorithm == IMAGE_CLASSIFICATION:
            parts = [self._read_lst(name, layout) for name in ("train", "validation")]
        else:
            parts = [self._read_detection_images()]
        return _merge(parts, self._classes())

    def _read_recordio(self, channel: str) -> Dataset:
        from multicloud_cv.datasets.recordio import read_recordio
        from multicloud_cv.errors import DatasetError

        folder = self.data_dir / channel
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        recs = [p for p in files if p.suffix.lower() == ".rec"] or files
        if not recs or all(p.stat().st_size == 0 for p in recs):
            # pains.md S2 (aws-samples/amazon-sagemaker-pipelines-mxnet-image-classification #1)
            raise ContainerFailure(f"ClientError: Unable to start training. Empty .rec file in {channel} channel.")
        parts = []
        for number, rec in enumerate(recs):
            if rec.stat().st_size == 0:
                continue
            with rec.open("rb") as handle:
                if handle.read(4) != RECORDIO_MAGIC:
                    # pains.md S5 (#562)
                    raise ContainerFailure(
                        "ClientError: The Record IO header does not start with the magic number.",
                        detail=f"{channel} channel: {rec.name} is not an MXNet RecordIO file",
                    )
            try:
                parts.append(
                    read_recordio(
                        rec,
                        self.workdir / "scratch" / "images" / channel / str(number),
                        split=channel,
                        classes=self._classes(),
                        lst_path=None,
                    )
                )
            except DatasetError as exc:
                raise self._label_failure(channel, str(exc)) from exc
        if not any(part.images for part in parts):
            raise ContainerFailure(f"ClientError: Unable to start training. Empty .rec file in {channel} channel.")
        return _merge(parts, self._classes())

    def _label_failure(self, channel: str, detail: str) -> ContainerFailure:
        if self.algorithm == OBJECT_DETECTION:
            # pains.md S4 (#343)
            return ContainerFailure("ClientError: Not enough label packed in img_list or rec file.", detail=detail)
        return ContainerFailure(
            f"ClientError: Unable to read the labels of the {channel} channel: every label must be a class index "
            f"below num_classes ({self._effective()['num_classes']}). ({detail})",
        )

    def _read_lst(self, channel: str, layout: Layout) -> Dataset:
        from multicloud_cv.datasets.lst import read_lst
        from multicloud_cv.errors import DatasetError

        folder = self.data_dir / f"{channel}_lst"
        lsts = sorted(p for p in folder.rglob("*.lst") if p.is_file()) or sorted(
            p for p in folder.rglob("*") if p.is_file()
        )
        if len(lsts) != 1:
            # pains.md S2 (#681, #367)
            raise ContainerFailure(
                f"ClientError: Invalid lst file in the {channel} channel.",
                detail=f"the {channel}_lst channel must hold exactly one .lst file, found {len(lsts)}",
            )
        label_format = layout.label_format or "auto"
        try:
            return read_lst(
                lsts[0],
                image_root=self.data_dir / channel,
                split=channel,
                classes=self._classes(),
                label_format=label_format,
            )
        except DatasetError as exc:
            raise ContainerFailure(f"ClientError: Invalid lst file in the {channel} channel.", detail=str(exc)) from exc

    def _read_manifest(self, channel: str, layout: Layout) -> Dataset:
        from multicloud_cv.datasets import augmented_manifest
        from multicloud_cv.errors import DatasetError

        channels = {str(c["ChannelName"]): c for c in self.params.get("InputDataConfig") or []}
        attributes = [str(a) for a in source(channels[channel]).get("AttributeNames") or []]
        path = self.data_dir / channel / f"{channel}.manifest"
        if not path.read_text(encoding="utf-8").strip():
            raise ContainerFailure(
                "ClientError: Got empty batch from pipe. Please check that the AttributeNames matches attributes "
                "names in the augmented manifest.",
                detail=f"the {channel} manifest has no lines",
            )
        if len(attributes) < 2:
            raise ContainerFailure(
                "ClientError: Got empty batch from pipe. Please check that the AttributeNames matches attributes "
                "names in the augmented manifest.",
                detail=f"AttributeNames {attributes} names no label attribute after the image reference",
            )
        label_format = layout.label_format or ("multi-hot" if self._effective().get("multi_label") == "1" else "auto")
        try:
            dataset = augmented_manifest.read(
                path, attribute=attributes[1], label_format=label_format, classes=self._classes()
            )
        except DatasetError as exc:
            raise self._label_failure(channel, str(exc)) from exc
        return replace(dataset, images=[replace(i, split=channel) for i in dataset.images])

    def _read_detection_images(self) -> Dataset:
        from multicloud_cv.datasets import sagemaker_detection
        from multicloud_cv.errors import DatasetError

        try:
            dataset = sagemaker_detection.read(self.data_dir)
        except DatasetError as exc:
            raise ContainerFailure(
                "ClientError: Not enough annotation packed in the list file or the RecordIO file. Each object "
                "requires at least five numbers.",
                detail=str(exc),
            ) from exc
        return dataset

    # ------------------------------------------------------------------------------------------- checks

    def _check_data(self, dataset: Dataset, merged: dict[str, str]) -> None:
        from mcv_sagemaker.algorithms import container_error

        train, validation = dataset.split("train"), dataset.split("validation")
        for channel, images in (("train", train), ("validation", validation)):
            self.logs.write(f"{channel} channel: {len(images)} images")
        batch = int(merged["mini_batch_size"])
        if len(train) < batch or len(validation) < batch:
            # pains.md S3 (aws/amazon-sagemaker-examples #1492)
            raise ContainerFailure(
                "ClientError: The number of input images must be bigger or equal to the mini_batch_size.",
                detail=f"mini_batch_size {batch}, train images {len(train)}, validation images {len(validation)}",
            )
        num_classes = int(merged["num_classes"])
        if self.algorithm == OBJECT_DETECTION:
            if dataset.task != "detection":
                raise ContainerFailure(
                    "ClientError: Not enough label packed in img_list or rec file.",
                    detail=f"the labels read as {dataset.task}, not object boxes",
                )
            max_boxes = max((len(i.boxes) for i in dataset.images), default=0)
            problem = container_error(self.algorithm, self.hyperparameters, max_boxes=max_boxes)
            if problem:
                raise ContainerFailure(problem)
            top = max((b.label for i in dataset.images for b in i.boxes), default=-1)
            if top >= num_classes:
                raise ContainerFailure(
                    f"ClientError: The class_id {top} is out of range: num_classes is {num_classes}; class ids "
                    "must be 0..num_classes-1."
                )
            return
        if dataset.task == "detection":
            raise ContainerFailure(
                "ClientError: Unable to read the labels: the data holds object-detection labels, not class indices."
            )
        if merged.get("multi_label", "0") != "1" and any(len(i.labels) != 1 for i in dataset.images):
            raise ContainerFailure(
                "ClientError: Each image needs exactly one class label when multi_label is 0; set multi_label=1 "
                "for multi-label data."
            )

    def _check_incremental(self, merged: dict[str, str]) -> None:
        folder = self.data_dir / "model"
        if not folder.is_dir():
            return
        archives = sorted(folder.rglob("*.tar.gz"))
        if not archives:
            raise ContainerFailure("ClientError: No model.tar.gz found in the model channel.")
        try:
            with tarfile.open(archives[0], "r:gz") as tar:
                member = tar.extractfile("hyperparameters.json")
                base = json.loads(member.read()) if member is not None else None
        except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
            raise ContainerFailure(
                "ClientError: Unable to load the model in the model channel for incremental training.",
                detail=str(exc),
            ) from exc
        if not isinstance(base, dict):
            raise ContainerFailure(
                "ClientError: Unable to load the model in the model channel for incremental training."
            )
        from mcv_sagemaker.algorithms import defaults

        base_merged = defaults(self.algorithm)
        base_merged.update({str(k): str(v) for k, v in base.items()})
        for key in INCREMENTAL_KEYS[self.algorithm]:
            if base_merged.get(key) != merged.get(key):
                raise ContainerFailure(
                    f"ClientError: Incremental training: the hyperparameter '{key}' ({merged.get(key)}) does not "
                    f"match the model in the model channel ({base_merged.get(key)}); "
                    f"{', '.join(INCREMENTAL_KEYS[self.algorithm])} must be the same as the base model's."
                )
        self.logs.write("Incremental training: base model checked (the emulator trains from scratch)")

    # ------------------------------------------------------------------------------------------- train

    def _image_size(self, merged: dict[str, str]) -> int:
        from mcv_sagemaker.algorithms import parse_image_shape

        _, height, width = parse_image_shape(self.algorithm, merged["image_shape"])
        side = min(max(height, width), self.limits.max_image_size)
        return max(16, side - side % 4)

    def _train_classifier(self, dataset: Dataset, merged: dict[str, str], model_dir: Path) -> dict[str, Any]:
        multilabel = merged.get("multi_label", "0") == "1"
        epochs = min(int(merged["epochs"]), self.limits.max_epochs)
        size = self._image_size(merged)
        batch = min(int(merged["mini_batch_size"]), 64)
        # The algorithm stops early only with early_stopping=True (default False), after its patience.
        early = merged.get("early_stopping", "False").strip().lower() == "true"
        patience = int(merged.get("early_stopping_patience", "5")) if early else epochs
        self.logs.write(
            f"Emulator caps: epochs {merged['epochs']} -> {epochs} (max_epochs), image_shape {merged['image_shape']} "
            f"-> {size}x{size} px (max_image_size), network small_cnn instead of ResNet-{merged.get('num_layers')}"
        )

        def sample(image: ImageRecord) -> tuple[str, list[int]]:
            return str(dataset.absolute(image)), list(image.labels)

        train = [sample(i) for i in dataset.split("train")]

        def on_epoch(event: dict[str, Any]) -> None:
            epoch = int(event["epoch"]) - 1
            self.logs.write(
                f"Epoch[{epoch}] Train-loss={float(event['train_loss']):.6f}",
                f"Epoch[{epoch}] Validation-accuracy={float(event['val_accuracy']):.6f}",
                f"Epoch[{epoch}] Time cost={float(event['seconds']):.3f}",
            )

        try:
            run = kit.train_classifier(
                task="multilabel" if multilabel else "classification",
                classes=list(dataset.classes),
                train=train,
                val=[sample(i) for i in dataset.split("validation")],
                image_size=size,
                epochs=epochs,
                batch_size=batch,
                threads=self.limits.threads,
                patience=patience,
                workdir=self.workdir / "scratch" / "train",
                model_dir=model_dir,
                model_id=self.job.name,
                should_stop=self._should_stop,
                on_epoch=on_epoch,
            )
        except kit.TrainingStopped as exc:
            raise StopRequested() from exc
        train_accuracy = kit.classifier_accuracy(model_dir, train, multilabel, limit=TRAIN_ACCURACY_IMAGES)
        self.logs.write(f"Epoch[{epochs - 1}] Train-accuracy={train_accuracy:.6f}")
        self.logs.write(f"Best validation accuracy {run.val_accuracy:.6f} (epoch {run.best_epoch})")
        self._metrics({"train:accuracy": train_accuracy, "validation:accuracy": run.val_accuracy})
        shapes = [{"shape": [int(merged["mini_batch_size"]), 3, size, size], "name": "data"}]
        (model_dir / "model-shapes.json").write_text(json.dumps(shapes) + "\n", "utf-8")
        return {
            "algorithm": self.algorithm,
            "task": "multilabel" if multilabel else "classification",
            "classes": list(dataset.classes),
            "num_classes": len(dataset.classes),
            "image_size": size,
            "job": self.job.name,
        }

    def _train_detector(self, dataset: Dataset, merged: dict[str, str], model_dir: Path) -> dict[str, Any]:
        size = self._image_size(merged)
        epochs = min(int(merged["epochs"]), self.limits.max_epochs)
        pretrained = merged.get("use_pretrained_model", "1") == "1"
        if pretrained:
            problem = kit.pretrained_backbone_problem()
            if problem:
                self.logs.write(f"No offline pretrained backbone ({problem}): training from scratch")
                pretrained = False
        self.logs.write(
            f"Emulator caps: epochs {merged['epochs']} -> {epochs} (max_epochs), at most {self.limits.max_steps} "
            f"steps (max_steps), image_shape {merged['image_shape']} -> {size} px (max_image_size), "
            f"network FCOS-MobileNetV2 instead of SSD-{merged.get('base_network')}"
        )

        def on_step(event: dict[str, Any]) -> None:
            self.logs.write(f"Step[{event['step']}/{event['total']}] Train-loss={float(event['loss']):.6f}")

        try:
            kit.train_detector(
                dataset,
                image_size=(size, size),
                epochs=epochs,
                max_steps=self.limits.max_steps,
                threads=self.limits.threads,
                pretrained=pretrained,
                workdir=self.workdir / "scratch" / "train",
                onnx_path=model_dir / "model.onnx",
                model_id=self.job.name,
                should_stop=self._should_stop,
                on_step=on_step,
            )
        except kit.TrainingStopped as exc:
            raise StopRequested() from exc
        score = kit.detector_map50(model_dir / "model.onnx", dataset, dataset.split("validation"), "sagemaker")
        self.logs.write(f"#validation_score (mAP): {score:.6f}")
        self._metrics({"validation:mAP": score})
        shapes = [{"shape": [int(merged["mini_batch_size"]), 3, size, size], "name": "data"}]
        (model_dir / "model-shapes.json").write_text(json.dumps(shapes) + "\n", "utf-8")
        return {
            "algorithm": self.algorithm,
            "task": "detection",
            "classes": list(dataset.classes),
            "num_classes": len(dataset.classes),
            "image_size": size,
            "job": self.job.name,
        }

    def _metrics(self, values: dict[str, float]) -> None:
        stamp = now()
        with self.job.lock:
            self.job.metrics = [
                {"MetricName": name, "Value": float(value), "Timestamp": stamp} for name, value in values.items()
            ]

    # ------------------------------------------------------------------------------------------ upload

    def _upload(self) -> None:
        model_dir = self.workdir / "model"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        uri = self.job.model_artifacts
        bucket, key = split_uri(uri)
        try:
            self.s3.put(bucket, key, buffer.getvalue(), "application/x-tar")
        except Exception as exc:
            raise ContainerFailure(
                f"ClientError: Artifact upload failed:Could not upload {uri}. Please ensure the bucket exists and "
                "the role has s3:PutObject permission on it."
            ) from exc
        self.logs.write(f"Uploaded {len(buffer.getvalue())} bytes to {uri}")


def _merge(parts: list[Dataset], classes: list[str]) -> Dataset:
    """One dataset of absolute paths from several read parts (their tasks must agree)."""
    from multicloud_cv.datasets.model import Dataset

    images = [replace(image, path=str(part.absolute(image))) for part in parts for image in part.images]
    tasks = [part.task for part in parts if part.images]
    task = "detection" if "detection" in tasks else "multilabel" if "multilabel" in tasks else "classification"
    return Dataset(root=Path("/"), classes=list(classes), images=images, task=task, source_format="sagemaker")
