"""A model version's training in the emulator: validate the manifests, write the validation results, train
for real, evaluate on the test images, write the summary file.

:class:`VersionRunner` runs in one background thread per version (thread target :meth:`VersionRunner.run`)
and walks it from ``TRAINING_IN_PROGRESS`` (at least ``pace`` seconds) to ``TRAINING_COMPLETED`` or
``TRAINING_FAILED`` with a ``StatusMessage`` (DG ``tm-debugging.md``: "the Status value is TRAINING_FAILED
and StatusMessage field contains the error"; written ``<CODE>: <message> <detail>`` here):

1. a failure queued with ``fail_next_version`` ends the walk at once (as a service error would);
2. the output bucket must exist (``ERROR_CANNOT_WRITE_OUTPUT_S3_BUCKET``);
3. the training and testing lines come from the project's TRAIN and TEST datasets (their entries as they
   were at CreateProjectVersion) or from the ``TrainingData`` / ``TestingData`` manifests; a manifest file
   error (:func:`.manifest.read_manifest`) fails the version and no validation results are written
   (DG ``tm-debugging-getting-validation-data.md``);
4. every line is validated (:mod:`.manifest`); ``TestingData.AutoCreate`` moves 20 % of the usable
   training lines to the test set (DG ``tm-debugging-aggregate-errors.md``,
   ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_AUTOSPLIT);
5. the terminal manifest content errors are decided (DG ``tm-debugging-aggregate-errors.md``;
   ``md-create-manifest-file-validation-rules.md``; ``limits.md``): more than 20 % invalid lines, images in
   several buckets, fewer than 2 labels (image-level) or 1 (localization), more than 250 labels, less than
   50 % of the training labels in the test set;
6. the validation results are written under the OutputConfig prefix (the guide names the files but not
   their keys; the emulator writes ``<S3KeyPrefix>/<VersionName>/manifest_summary.json``,
   ``.../training_manifest_with_validation.json`` and ``.../testing_manifest_with_validation.json``, plus
   ``.../training_dataset.manifest`` / ``testing_dataset.manifest`` snapshots when the lines came from
   datasets and ``.../training_output.manifest`` / ``testing_output.manifest`` with the lines used) and
   DescribeProjectVersions names them (``TrainingDataResult``/``TestingDataResult`` ``Validation``,
   ``ManifestSummary``); a content error then fails the version;
7. the local engine trains on the usable training lines (:mod:`multicloud_cv.emulation.training`:
   ``small_cnn`` for image-level labels, FCOS for boxes; ``max_epochs``, ``max_steps``, ``max_image_size``
   and ``threads`` caps), the test lines serving as validation data;
8. the model is scored on the usable test lines (:mod:`.evaluation`) and the summary file is written as
   ``<S3KeyPrefix>/EvaluationSummary-<ProjectName>-<VersionName>.json`` (the key layout of the guide's
   example, DG ``im-access-summary-evaluation-manifest.md``, with the reference page's file name);
   ``EvaluationResult`` {``F1Score``, ``Summary``} and ``BillableTrainingTimeInSeconds`` are set.

An unexpected exception fails the version with "Amazon Rekognition experienced a service issue." and the
error (the guide's service-error words).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_rekognition.emulator import evaluation
from mcv_rekognition.emulator.manifest import (
    IMAGE_LEVEL,
    LOCALIZATION,
    Entry,
    ImageProbe,
    ManifestFileError,
    Validation,
    clean,
    read_manifest,
    split_entries,
)
from mcv_rekognition.emulator.store import Version, now
from mcv_rekognition.emulator.texts import status_message, terminal
from multicloud_cv.emulation import training as kit
from multicloud_cv.emulation.aws import S3

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset

log = logging.getLogger(__name__)

MAX_LABELS = 250
MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class TrainingInputs:
    """Where a version's lines come from: dataset entries, or manifests (``test`` ``None`` with AutoCreate)."""

    train_entries: list[Entry] | None = None
    test_entries: list[Entry] | None = None
    train_manifest: tuple[str, str] | None = None
    test_manifest: tuple[str, str] | None = None
    auto_create: bool = False


class Stopped(Exception):
    """The emulator is shutting down."""


class ContentError(Exception):
    """A terminal manifest content error: validation results are written, then the version fails."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def join_key(prefix: str, name: str) -> str:
    """``<prefix>/<name>`` for an S3KeyPrefix that may be empty or end with ``/``."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def asset(bucket: str, key: str) -> dict[str, Any]:
    """A ``GroundTruthManifest`` asset naming ``s3://bucket/key``."""
    return {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}


class VersionRunner:
    """Trains one version (see the module docstring); :meth:`run` is the thread's target."""

    def __init__(
        self,
        project: str,
        version: Version,
        inputs: TrainingInputs,
        s3: S3,
        probe: ImageProbe,
        limits: kit.Limits,
        closing: threading.Event,
    ) -> None:
        self.project = project
        self.version = version
        self.inputs = inputs
        self.s3 = s3
        self.probe = probe
        self.limits = limits
        self.closing = closing
        output = version.request["OutputConfig"]
        self.bucket = str(output.get("S3Bucket") or "")
        self.prefix = str(output.get("S3KeyPrefix") or "")
        self.folder = join_key(self.prefix, version.name)
        self.spanning: list[dict[str, str]] = []

    # ------------------------------------------------------------------------------------------ walk

    def _pause(self, seconds: float) -> None:
        if self.closing.wait(max(0.0, seconds)):
            raise Stopped()

    def _fail(self, message: str) -> None:
        version = self.version
        with version.lock:
            version.training_end = now()
            version.set_status("TRAINING_FAILED", message)
        log.info("version %s failed: %s", version.name, message)

    def run(self) -> None:
        """Walk the version to TRAINING_COMPLETED or TRAINING_FAILED; never raises."""
        version = self.version
        try:
            with version.lock:
                version.training_start = now()
            started = time.monotonic()
            self._pause(version.pace)
            if version.injected_failure:
                self._fail(version.injected_failure)
                return
            if not self.bucket or not self.s3.bucket_exists(self.bucket):
                self._fail(status_message("ERROR_CANNOT_WRITE_OUTPUT_S3_BUCKET", f"(s3://{self.bucket})"))
                return
            try:
                train, test = self._validations()
            except ManifestFileError as error:
                self._fail(status_message(error.code, error.detail))
                return
            problem = self._content_errors(train, test)
            self._write_validation(train, test)
            if problem is not None:
                self._fail(status_message(problem))
                return
            self._train_and_evaluate(train, test)
            self._pause(max(0.0, version.pace - (time.monotonic() - started)))
            with version.lock:
                version.training_end = now()
                version.billable_seconds = max(1, math.ceil(version.training_end - (version.training_start or 0)))
                version.set_status("TRAINING_COMPLETED")
        except Stopped:
            return
        except Exception as exc:  # the version's last word: a service error
            log.warning("training of %s failed inside the emulator", version.name, exc_info=True)
            self._fail(f"Amazon Rekognition experienced a service issue. ({type(exc).__name__}: {exc})")
        finally:
            shutil.rmtree(version.workdir / "scratch", ignore_errors=True)

    # ------------------------------------------------------------------------------------ validation

    def _lines(self, entries: list[Entry] | None, manifest: tuple[str, str] | None) -> list[str]:
        if entries is not None:
            return [json.dumps(clean(e.output), separators=(",", ":")) for e in entries]
        assert manifest is not None
        return read_manifest(self.s3, *manifest)

    def _validations(self) -> tuple[Validation, Validation]:
        inputs = self.inputs
        train_lines = self._lines(inputs.train_entries, inputs.train_manifest)
        test_lines = None if inputs.auto_create else self._lines(inputs.test_entries, inputs.test_manifest)
        train = Validation.of(train_lines, self.probe)
        if test_lines is not None:
            return train, Validation.of(test_lines, self.probe)
        split = split_entries(train.entries, train.use_case)
        if split is None:
            train.errors.append(terminal("ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_AUTOSPLIT"))
            return train, Validation([], train.use_case)
        kept, moved = split
        train = Validation.from_entries([replace(e, number=i) for i, e in enumerate(kept, start=1)])
        test = Validation.from_entries([replace(e, number=i) for i, e in enumerate(moved, start=1)])
        return train, test

    @staticmethod
    def _dataset_errors(validation: Validation) -> None:
        if validation.too_many_invalid():
            validation.errors.append(terminal("ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"))
        if len(validation.buckets) > 1:
            validation.errors.append(terminal("ERROR_IMAGES_IN_MULTIPLE_S3_BUCKETS"))
        labels = validation.labels()
        minimum = 1 if validation.use_case == LOCALIZATION else 2
        if len(labels) < minimum:
            validation.errors.append(terminal("ERROR_MANIFEST_TOO_FEW_LABELS"))
        if len(labels) > MAX_LABELS:
            validation.errors.append(terminal("ERROR_MANIFEST_TOO_MANY_LABELS"))

    def _content_errors(self, train: Validation, test: Validation) -> str | None:
        """Record the terminal content errors in the validations; the first one's code (``None``: none)."""
        self._dataset_errors(train)
        self._dataset_errors(test)
        train_labels = train.labels()
        if train_labels and test.entries:
            common = train_labels & test.labels(test.use_case)
            usable = train_labels & test.labels(train.use_case)
            if len(common) < MIN_OVERLAP * len(train_labels):
                self.spanning.append(terminal("ERROR_INSUFFICIENT_LABEL_OVERLAP"))
            elif len(usable) < MIN_OVERLAP * len(train_labels):
                self.spanning.append(terminal("ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP"))
        for errors in (train.errors, test.errors, self.spanning):
            if errors:
                return errors[0]["code"]
        return None

    def _put(self, name: str, data: bytes, content_type: str = "application/json") -> dict[str, Any]:
        key = join_key(self.folder, name)
        self.s3.put(self.bucket, key, data, content_type)
        return asset(self.bucket, key)

    def _write_validation(self, train: Validation, test: Validation) -> None:
        summary = {
            "statistics": {"training": train.statistics(), "testing": test.statistics()},
            "errors": list(self.spanning),
        }
        training: dict[str, Any] = {
            "Validation": {"Assets": [self._put("training_manifest_with_validation.json", train.with_validation())]}
        }
        testing: dict[str, Any] = {
            "Validation": {"Assets": [self._put("testing_manifest_with_validation.json", test.with_validation())]}
        }
        manifest_summary = self._put("manifest_summary.json", json.dumps(summary, indent=1).encode())
        inputs = self.inputs
        if inputs.train_manifest is not None:
            training["Input"] = {"Assets": [asset(*inputs.train_manifest)]}
        else:
            snapshot = "".join(json.dumps(clean(e.output)) + "\n" for e in inputs.train_entries or [])
            training["Input"] = {"Assets": [self._put("training_dataset.manifest", snapshot.encode())]}
        if inputs.auto_create:
            testing["Input"] = {"Assets": [], "AutoCreate": True}
        elif inputs.test_manifest is not None:
            testing["Input"] = {"Assets": [asset(*inputs.test_manifest)], "AutoCreate": False}
        else:
            snapshot = "".join(json.dumps(clean(e.output)) + "\n" for e in inputs.test_entries or [])
            testing["Input"] = {
                "Assets": [self._put("testing_dataset.manifest", snapshot.encode())],
                "AutoCreate": False,
            }
        with self.version.lock:
            self.version.training_result = training
            self.version.testing_result = testing
            self.version.manifest_summary = {"S3Object": manifest_summary["GroundTruthManifest"]["S3Object"]}

    # -------------------------------------------------------------------------------------- training

    def _dataset(self, train: Validation, test: Validation) -> tuple[Dataset, str]:
        from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord

        use_case = train.use_case
        classes = sorted(train.labels())
        index = {name: i for i, name in enumerate(classes)}
        multilabel = use_case == IMAGE_LEVEL and any(len(e.labels) > 1 for e in train.usable + test.usable)
        records = []
        for split, entries in (("train", train.usable), ("test", [e for e in test.entries if e.usable(use_case)])):
            for entry in entries:
                image = entry.image
                assert image is not None and image.path is not None
                if use_case == IMAGE_LEVEL:
                    labels = tuple(sorted(index[name] for name in entry.labels if name in index))
                    if not labels:
                        continue
                    records.append(ImageRecord(str(image.path), labels=labels, split=split))
                    continue
                boxes = []
                for box in entry.boxes:
                    if box.label not in index:
                        continue
                    x1, y1 = min(box.left + box.width, image.width), min(box.top + box.height, image.height)
                    if x1 - box.left >= 1 and y1 - box.top >= 1:
                        boxes.append(BoxAnnotation(index[box.label], box.left, box.top, x1, y1))
                records.append(
                    ImageRecord(
                        str(image.path), boxes=tuple(boxes), split=split, width=image.width, height=image.height
                    )
                )
        task = "detection" if use_case == LOCALIZATION else "multilabel" if multilabel else "classification"
        dataset = Dataset(root=Path("/"), classes=classes, images=records, task=task, source_format="groundtruth")
        return dataset, task

    def _should_stop(self) -> bool:
        return self.closing.is_set()

    def _train_and_evaluate(self, train: Validation, test: Validation) -> None:
        version = self.version
        dataset, task = self._dataset(train, test)
        model_dir = version.model_dir
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        scratch = version.workdir / "scratch"
        limits = self.limits
        train_records, test_records = dataset.split("train"), dataset.split("test")
        try:
            if task == "detection":
                labels, extra = self._train_detector(dataset, scratch, model_dir)
            else:
                labels, extra = self._train_classifier(dataset, task, scratch, model_dir)
        except kit.TrainingStopped as exc:
            raise Stopped() from exc
        content = evaluation.summary(
            version_arn=version.arn,
            labels=labels,
            training_images=len(train_records),
            testing_images=len(test_records),
            **extra,
        )
        key = join_key(self.prefix, f"EvaluationSummary-{self.project}-{version.name}.json")
        self.s3.put(self.bucket, key, json.dumps(content, indent=1).encode(), "application/json")
        used_train = "".join(json.dumps(clean(e.output)) + "\n" for e in train.usable)
        used_test = "".join(json.dumps(clean(e.output)) + "\n" for e in test.entries if e.usable(train.use_case))
        train_output = self._put("training_output.manifest", used_train.encode())
        test_output = self._put("testing_output.manifest", used_test.encode())
        thresholds = {r.label: r.threshold for r in labels}
        info = {"task": task, "classes": list(dataset.classes), "thresholds": thresholds, "caps": vars(limits)}
        (model_dir / "emulator.json").write_text(json.dumps(info, indent=1) + "\n", "utf-8")
        with version.lock:
            version.task = task
            version.classes = list(dataset.classes)
            version.thresholds = thresholds
            version.evaluation = {
                "F1Score": float(content["AggregatedEvaluationResults"]["F1Score"]),
                "Summary": {"S3Object": {"Bucket": self.bucket, "Name": key}},
            }
            if version.training_result is not None:
                version.training_result["Output"] = {"Assets": [train_output]}
            if version.testing_result is not None:
                version.testing_result["Output"] = {"Assets": [test_output]}

    def _train_classifier(
        self, dataset: Dataset, task: str, scratch: Path, model_dir: Path
    ) -> tuple[list[evaluation.LabelResult], dict[str, Any]]:
        limits = self.limits
        train = [(str(dataset.absolute(i)), list(i.labels)) for i in dataset.split("train")]
        test_records = dataset.split("test")
        test = [(str(dataset.absolute(i)), list(i.labels)) for i in test_records]
        kit.train_classifier(
            task=task,
            classes=dataset.classes,
            train=train,
            val=test,
            image_size=limits.max_image_size,
            epochs=limits.max_epochs,
            batch_size=max(4, min(32, len(train) // 8)),
            threads=limits.threads,
            patience=limits.max_epochs,
            workdir=scratch / "train",
            model_dir=model_dir,
            model_id=self.version.name,
            should_stop=self._should_stop,
        )
        scores = kit.classify_files(model_dir, [path for path, _ in test], threads=limits.threads)
        truths = [set(labels) for _, labels in test]
        labels, confusion = evaluation.classification_results(dataset.classes, truths, scores)
        return labels, {"confusion": confusion if task == "classification" else None}

    def _train_detector(
        self, dataset: Dataset, scratch: Path, model_dir: Path
    ) -> tuple[list[evaluation.LabelResult], dict[str, Any]]:
        from multicloud_cv.evaluation_detection import score_detection

        limits = self.limits
        side = limits.max_image_size
        kit.train_detector(
            dataset,
            image_size=(side, side),
            epochs=limits.max_epochs,
            max_steps=limits.max_steps,
            threads=limits.threads,
            pretrained=kit.pretrained_backbone_problem() is None,
            workdir=scratch / "train",
            onnx_path=model_dir / "model.onnx",
            model_id=self.version.name,
            should_stop=self._should_stop,
        )
        images = dataset.split("test")
        found = kit.detect_files(
            model_dir / "model.onnx", [dataset.absolute(i) for i in images], threads=limits.threads
        )
        truths = [[(b.label, (b.x_min, b.y_min, b.x_max, b.y_max)) for b in i.boxes] for i in images]
        sizes = [(int(i.width or 0), int(i.height or 0)) for i in images]
        labels = evaluation.detection_results(dataset.classes, truths, found, sizes)
        average_precision = 0.0
        if images:
            predictions = kit.detection_predictions(dataset.classes, found, "rekognition")
            value = score_detection(dataset, images, predictions).get("map50")
            average_precision = float(value) if value is not None else 0.0
        return labels, {"average_precision": average_precision}
