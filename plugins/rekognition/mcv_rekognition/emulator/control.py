"""The emulated Rekognition Custom Labels API: one method per operation, behind the service's checks.

:meth:`RekognitionService.handle` (the shared :class:`multicloud_cv.emulation.service.JsonService`) serves
one JSON 1.1 call, ``X-Amz-Target: RekognitionService.<Operation>``: record, faults, validation against
botocore's ``rekognition`` model (bad parameters: ``InvalidParameterException``, cloud-apis.md 8), then
``_op_<Operation>``. Operations: CreateProject, DescribeProjects, DeleteProject, CreateDataset,
DescribeDataset, DeleteDataset, ListDatasetEntries, ListDatasetLabels, DistributeDatasetEntries,
CreateProjectVersion, DescribeProjectVersions, StartProjectVersion, StopProjectVersion,
DeleteProjectVersion, DetectCustomLabels, TagResource, UntagResource, ListTagsForResource. Any other
operation of the model answers HTTP 501 ``NotImplementedException``.

Rules, with their sources (BC = botocore's operation documentation; DG = the Custom Labels Developer Guide):

* Names: a second project of a name, or a second version of a name in a project, is
  ``ResourceInUseException``; a second TRAIN (or TEST) dataset in a project is
  ``ResourceAlreadyExistsException`` (both are the operations' modeled errors).
* DeleteProject is asynchronous (``DELETING``, then the project is gone from DescribeProjects, BC) and is
  refused with ``ResourceInUseException`` while the project has model versions (BC, DG ``cp-delete.md``)
  or datasets (the emulator's choice, stricter than the guide, which names only models: a client that
  deletes datasets first works against both).
* DeleteDataset: refused while the dataset is creating or updating (BC); ``DELETE_IN_PROGRESS``, then
  ``ResourceNotFoundException``.
* CreateProjectVersion: ``TrainingData``/``TestingData`` only for a project without datasets (BC, cloud-apis
  8); a project with datasets needs a ready TRAIN and TEST dataset (DistributeDatasetEntries fills an
  empty TEST dataset); ``TestingData`` is one manifest or ``AutoCreate`` (BC ``TestingData``).
* StartProjectVersion needs ``MinInferenceUnits`` >= 1 (BC) and ``MaxInferenceUnits`` >= it, and a version
  that is ``TRAINING_COMPLETED``, ``STOPPED`` or ``FAILED``; a running or starting version is
  ``ResourceInUseException``. StopProjectVersion applies to ``RUNNING`` or ``STARTING`` versions.
  DeleteProjectVersion is refused while the version is training, starting, running or stopping ("You can't
  delete a project version if it is running or if it is training", BC).
* DetectCustomLabels answers only while the version is ``RUNNING`` (``ResourceNotReadyException``, BC
  error shape's documentation); ``Image.Bytes`` up to 4 MB (DG ``limits.md``: "Maximum size of images
  passed as raw bytes is 4 MB"; larger: ``ImageTooLargeException``), or an ``S3Object`` (missing:
  ``InvalidS3ObjectException``; over 15 MB: ``ImageTooLargeException``); PNG or JPEG only
  (``InvalidImageFormatException``); sides 64 to 4096 px and aspect ratio at most 20:1 (DG ``limits.md``).
* Paging: ``MaxResults`` up to 100 (default 100), ``NextToken`` opaque (an unknown one is
  ``InvalidPaginationTokenException``). Lists are newest first.

The messages of these API errors are the emulator's (the service's texts are not documented); the error
bodies carry ``__type``, ``Code``, ``Message`` and ``Logref`` as Rekognition's do.
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from mcv_rekognition.emulator import texts
from mcv_rekognition.emulator.datasets import distribute, import_dataset, label_stats
from mcv_rekognition.emulator.hosting import Hosting, custom_labels
from mcv_rekognition.emulator.manifest import FORMATS, MAX_ASPECT, MAX_IMAGE_BYTES, MAX_SIDE, MIN_SIDE, ImageProbe
from mcv_rekognition.emulator.store import DatasetRecord, Project, Store, Version, now
from mcv_rekognition.emulator.training import TrainingInputs, VersionRunner
from multicloud_cv.emulation.aws import S3
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.protocol import ApiError, missing_member
from multicloud_cv.emulation.service import JsonService, Target
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

TARGET_PREFIX = "RekognitionService."
SERVICE = "rekognition"
MAX_BYTES = 4 * 1024 * 1024
"""DetectCustomLabels' limit for image bytes (DG ``limits.md``); the model allows 5 MB."""
MAX_TAGS = 200

OPERATIONS = (
    "CreateProject",
    "DescribeProjects",
    "DeleteProject",
    "CreateDataset",
    "DescribeDataset",
    "DeleteDataset",
    "ListDatasetEntries",
    "ListDatasetLabels",
    "DistributeDatasetEntries",
    "CreateProjectVersion",
    "DescribeProjectVersions",
    "StartProjectVersion",
    "StopProjectVersion",
    "DeleteProjectVersion",
    "DetectCustomLabels",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)

T = TypeVar("T")


def invalid(message: str) -> ApiError:
    """``InvalidParameterException`` (HTTP 400)."""
    return ApiError(texts.INVALID_PARAMETER, message)


def not_found(message: str) -> ApiError:
    """``ResourceNotFoundException`` (HTTP 400)."""
    return ApiError(texts.NOT_FOUND, message)


def in_use(message: str) -> ApiError:
    """``ResourceInUseException`` (HTTP 400)."""
    return ApiError(texts.IN_USE, message)


def page(items: Sequence[T], p: dict[str, Any]) -> tuple[list[T], str | None]:
    """One page of ``items`` for ``MaxResults`` (default 100) and ``NextToken`` (an offset, opaque to clients)."""
    token = p.get("NextToken")
    start = 0
    if token:
        text = str(token)
        if not text.startswith("mcv-") or not text[4:].isdigit():
            raise ApiError(texts.INVALID_TOKEN, "Invalid pagination token.")
        start = int(text[4:])
    size = int(p.get("MaxResults") or 100)
    chosen = list(items[start : start + size])
    return chosen, (f"mcv-{start + size}" if start + size < len(items) else None)


class RekognitionService(JsonService):
    """The emulated account's Custom Labels API (see the module docstring). Thread-safe; one per emulator."""

    product = "Rekognition"
    validation_error = texts.INVALID_PARAMETER
    internal_error = texts.INTERNAL
    message_key = "Message"

    def __init__(
        self,
        region: str,
        s3: S3,
        state_dir: Path,
        pace: float,
        limits: Limits,
        faults: FaultBook,
        closing: threading.Event,
    ) -> None:
        super().__init__(faults, closing)
        self.region = region
        self.s3 = s3
        self.state_dir = state_dir
        self.pace = pace
        self.limits = limits
        self.store = Store(region)
        self.account = self.store.account
        self.probe = ImageProbe(s3, state_dir / "images")
        self.hosting = Hosting(closing, limits.threads, self._start)

    def targets(self) -> list[Target]:
        """``RekognitionService.*`` on botocore's ``rekognition`` model."""
        return [Target(TARGET_PREFIX, SERVICE, self, OPERATIONS)]

    def error_body(self, error: ApiError) -> dict[str, Any]:
        """Rekognition's error body: ``__type``, ``Code``, ``Message``, ``Logref``."""
        return {"__type": error.code, "Code": error.code, "Message": error.message, "Logref": str(uuid.uuid4())}

    # ---------------------------------------------------------------------------------------- lookups

    def _project(self, arn: str) -> Project:
        project = self.store.project_by_arn(arn)
        if project is None:
            raise not_found(f"The project {arn} does not exist.")
        return project

    def _dataset(self, arn: str) -> tuple[Project, DatasetRecord]:
        found = self.store.dataset_by_arn(arn)
        if found is None:
            raise not_found(f"The dataset {arn} does not exist.")
        return found

    def _version(self, arn: str) -> tuple[Project, Version]:
        found = self.store.version_by_arn(arn)
        if found is None:
            raise not_found(f"The model version {arn} does not exist.")
        return found

    def _tag(self, arn: str, tags: dict[str, str]) -> None:
        if tags:
            with self.store.lock:
                self.store.tags.setdefault(arn, {}).update(tags)

    def _forget(self, arn: str) -> None:
        with self.store.lock:
            self.store.tags.pop(arn, None)

    # --------------------------------------------------------------------------------------- projects

    def _op_CreateProject(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["ProjectName"])
        if p.get("Feature", "CUSTOM_LABELS") != "CUSTOM_LABELS":
            raise invalid("The Rekognition emulator implements Custom Labels projects only (Feature CUSTOM_LABELS).")
        if "AutoUpdate" in p:
            raise invalid("AutoUpdate applies only to adapters (Feature CONTENT_MODERATION).")
        with self.store.lock:
            if name in self.store.projects:
                raise in_use(f"A project named {name} already exists.")
            project = Project(name=name, arn=f"{self.store.base(name)}/{self.store.stamp()}", created=now())
            self.store.projects[name] = project
            self._tag(project.arn, p.get("Tags") or {})
        return {"ProjectArn": project.arn}

    def _op_DescribeProjects(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("ProjectNames")
        features = p.get("Features")
        with self.store.lock:
            projects = sorted(self.store.projects.values(), key=lambda x: x.created, reverse=True)
            if names:
                projects = [x for x in projects if x.name in names]
            if features and "CUSTOM_LABELS" not in features:
                projects = []
            chosen, token = page(projects, p)
            out: dict[str, Any] = {"ProjectDescriptions": [x.describe() for x in chosen]}
        if token:
            out["NextToken"] = token
        return out

    def _op_DeleteProject(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            project = self._project(str(p["ProjectArn"]))
            if project.status == "DELETING":
                return {"Status": "DELETING"}
            if project.versions:
                raise in_use(
                    f"The project {project.name} has model versions ({', '.join(sorted(project.versions))}); delete "
                    "them first with DeleteProjectVersion."
                )
            if project.datasets:
                raise in_use(
                    f"The project {project.name} has datasets ({', '.join(sorted(project.datasets))}); delete them "
                    "first with DeleteDataset."
                )
            project.status = "DELETING"

        def gone() -> None:
            with self.store.lock:
                if self.store.projects.get(project.name) is project:
                    del self.store.projects[project.name]
                self._forget(project.arn)

        self.hosting.later(f"rekognition-delete-project-{project.name}", self.pace, gone)
        return {"Status": "DELETING"}

    # --------------------------------------------------------------------------------------- datasets

    def _op_CreateDataset(self, p: dict[str, Any]) -> dict[str, Any]:
        kind = str(p["DatasetType"])
        source = p.get("DatasetSource") or {}
        manifest: tuple[str, str] | None = None
        copied = None
        if source.get("GroundTruthManifest") and source.get("DatasetArn"):
            raise invalid("DatasetSource takes GroundTruthManifest or DatasetArn, not both.")
        if source.get("GroundTruthManifest"):
            s3_object = source["GroundTruthManifest"].get("S3Object") or {}
            for member in ("Bucket", "Name"):
                if not s3_object.get(member):
                    raise missing_member(
                        f"datasetSource.groundTruthManifest.s3Object.{member.lower()}", texts.INVALID_PARAMETER
                    )
            manifest = (str(s3_object["Bucket"]), str(s3_object["Name"]))
        elif source.get("DatasetArn"):
            _, original = self._dataset(str(source["DatasetArn"]))
            if not original.ready:
                raise invalid(f"The dataset {original.arn} is {original.status}; copy a dataset once it is ready.")
            with original.lock:
                copied = list(original.entries)
        with self.store.lock:
            project = self._project(str(p["ProjectArn"]))
            if project.status == "DELETING":
                raise in_use(f"The project {project.name} is being deleted.")
            if kind in project.datasets:
                raise ApiError(texts.ALREADY_EXISTS, f"The project {project.name} already has a {kind} dataset.")
            arn = f"{self.store.base(project.name)}/dataset/{kind.lower()}/{self.store.stamp()}"
            dataset = DatasetRecord(arn=arn, project=project.name, kind=kind, created=now())
            project.datasets[kind] = dataset
            self._tag(arn, p.get("Tags") or {})
        pace = self.pace * self.faults.take_slow("CreateDataset")
        self._start(
            f"rekognition-dataset-{project.name}-{kind.lower()}",
            lambda: import_dataset(dataset, manifest, copied, self.s3, self.probe, pace, self.closing),
        )
        return {"DatasetArn": arn}

    def _op_DescribeDataset(self, p: dict[str, Any]) -> dict[str, Any]:
        _, dataset = self._dataset(str(p["DatasetArn"]))
        return {"DatasetDescription": dataset.describe()}

    def _op_DeleteDataset(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            project, dataset = self._dataset(str(p["DatasetArn"]))
            if dataset.status == "DELETE_IN_PROGRESS":
                return {}
            if dataset.status in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"):
                raise in_use(f"The dataset {dataset.arn} is {dataset.status}; delete it once that is done.")
            dataset.set_status("DELETE_IN_PROGRESS")

        def gone() -> None:
            with self.store.lock:
                if project.datasets.get(dataset.kind) is dataset:
                    del project.datasets[dataset.kind]
                self._forget(dataset.arn)

        self.hosting.later(f"rekognition-delete-dataset-{project.name}-{dataset.kind.lower()}", self.pace, gone)
        return {}

    def _ready(self, dataset: DatasetRecord) -> None:
        if not dataset.ready:
            raise ApiError(texts.NOT_READY, f"The dataset {dataset.arn} is {dataset.status}.")

    def _op_ListDatasetEntries(self, p: dict[str, Any]) -> dict[str, Any]:
        _, dataset = self._dataset(str(p["DatasetArn"]))
        self._ready(dataset)
        with dataset.lock:
            entries = list(dataset.entries)
        wanted = set(p.get("ContainsLabels") or [])
        if wanted:
            entries = [e for e in entries if not e.invalid and e.all_labels & wanted]
        if "Labeled" in p:
            labeled = bool(p["Labeled"])
            entries = [e for e in entries if (not e.invalid and not e.ignored and bool(e.all_labels)) == labeled]
        if p.get("SourceRefContains"):
            entries = [e for e in entries if str(p["SourceRefContains"]) in (e.source_ref or "")]
        if "HasErrors" in p:
            entries = [e for e in entries if e.has_errors == bool(p["HasErrors"])]
        chosen, token = page(entries, p)
        out: dict[str, Any] = {"DatasetEntries": [e.text() for e in chosen]}
        if token:
            out["NextToken"] = token
        return out

    def _op_ListDatasetLabels(self, p: dict[str, Any]) -> dict[str, Any]:
        _, dataset = self._dataset(str(p["DatasetArn"]))
        self._ready(dataset)
        with dataset.lock:
            stats = label_stats(list(dataset.entries))
        rows = [{"LabelName": name, "LabelStats": stats[name]} for name in sorted(stats)]
        chosen, token = page(rows, p)
        out: dict[str, Any] = {"DatasetLabelDescriptions": chosen}
        if token:
            out["NextToken"] = token
        return out

    def _op_DistributeDatasetEntries(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [self._dataset(str(item["Arn"])) for item in p["Datasets"]]
        kinds = {dataset.kind: (project, dataset) for project, dataset in found}
        if set(kinds) != {"TRAIN", "TEST"} or found[0][0] is not found[1][0]:
            raise invalid("Datasets must be the TRAIN and the TEST dataset of one project.")
        train, test = kinds["TRAIN"][1], kinds["TEST"][1]
        with self.store.lock:
            for dataset in (train, test):
                self._ready(dataset)
            if test.entries:
                raise invalid(f"The test dataset {test.arn} must be empty.")
            train.set_status("UPDATE_IN_PROGRESS")
            test.set_status("UPDATE_IN_PROGRESS")
        self._start(f"rekognition-distribute-{train.project}", lambda: distribute(train, test, self.pace, self.closing))
        return {}

    # --------------------------------------------------------------------------------------- versions

    def _assets(self, data: dict[str, Any], where: str) -> tuple[str, str]:
        assets = data.get("Assets") or []
        if len(assets) != 1:
            raise invalid(f"{where}.Assets must hold exactly one GroundTruthManifest, not {len(assets)}.")
        s3_object = (assets[0].get("GroundTruthManifest") or {}).get("S3Object") or {}
        if not s3_object.get("Bucket") or not s3_object.get("Name"):
            raise invalid(f"{where}.Assets[0].GroundTruthManifest.S3Object needs Bucket and Name.")
        return str(s3_object["Bucket"]), str(s3_object["Name"])

    def _inputs(self, project: Project, p: dict[str, Any]) -> TrainingInputs:
        training, testing = p.get("TrainingData"), p.get("TestingData")
        if project.datasets:
            if training is not None or testing is not None:
                raise invalid(
                    "TrainingData and TestingData can only be given for a project without datasets; this project "
                    "trains from its TRAIN and TEST datasets."
                )
            entries = {}
            for kind in ("TRAIN", "TEST"):
                dataset = project.datasets.get(kind)
                if dataset is None:
                    hint = " (or DistributeDatasetEntries into an empty one)" if kind == "TEST" else ""
                    raise invalid(
                        f"The project {project.name} has no {kind} dataset; create it with CreateDataset{hint}."
                    )
                if dataset.busy:
                    raise in_use(f"The {kind} dataset {dataset.arn} is {dataset.status}.")
                if not dataset.ready:
                    raise invalid(f"The {kind} dataset {dataset.arn} is {dataset.status}.")
                with dataset.lock:
                    entries[kind] = list(dataset.entries)
            return TrainingInputs(train_entries=entries["TRAIN"], test_entries=entries["TEST"])
        if training is None:
            raise missing_member("trainingData", texts.INVALID_PARAMETER)
        if testing is None:
            raise missing_member("testingData", texts.INVALID_PARAMETER)
        train_manifest = self._assets(training, "TrainingData")
        if testing.get("AutoCreate"):
            if testing.get("Assets"):
                raise invalid("TestingData takes Assets or AutoCreate, not both.")
            return TrainingInputs(train_manifest=train_manifest, auto_create=True)
        return TrainingInputs(train_manifest=train_manifest, test_manifest=self._assets(testing, "TestingData"))

    def _op_CreateProjectVersion(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["VersionName"])
        if not (p["OutputConfig"] or {}).get("S3Bucket"):
            raise missing_member("outputConfig.s3Bucket", texts.INVALID_PARAMETER)
        if p.get("FeatureConfig"):
            raise invalid("FeatureConfig applies only to adapters (Feature CONTENT_MODERATION).")
        with self.store.lock:
            project = self._project(str(p["ProjectArn"]))
            if project.status == "DELETING":
                raise in_use(f"The project {project.name} is being deleted.")
            if name in project.versions:
                raise in_use(f"A model version named {name} already exists in the project {project.name}.")
            inputs = self._inputs(project, p)
            stamp = self.store.stamp()
            version = Version(
                name=name,
                arn=f"{self.store.base(project.name)}/version/{name}/{stamp}",
                project=project.name,
                created=now(),
                request=p,
                pace=self.pace * self.faults.take_slow("CreateProjectVersion"),
                workdir=self.state_dir / "versions" / f"{project.name}-{name}-{stamp}",
            )
            version.injected_failure = self.faults.next_failure()
            project.versions[name] = version
            self._tag(version.arn, p.get("Tags") or {})
        runner = VersionRunner(project.name, version, inputs, self.s3, self.probe, self.limits, self.closing)
        self._start(f"rekognition-training-{project.name}-{name}", runner.run)
        return {"ProjectVersionArn": version.arn}

    def _op_DescribeProjectVersions(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            project = self._project(str(p["ProjectArn"]))
            versions = sorted(project.versions.values(), key=lambda v: v.created, reverse=True)
        names = p.get("VersionNames")
        if names:
            versions = [v for v in versions if v.name in names]
        chosen, token = page(versions, p)
        out: dict[str, Any] = {"ProjectVersionDescriptions": [v.describe() for v in chosen]}
        if token:
            out["NextToken"] = token
        return out

    def _op_StartProjectVersion(self, p: dict[str, Any]) -> dict[str, Any]:
        _, version = self._version(str(p["ProjectVersionArn"]))
        low = int(p["MinInferenceUnits"])
        high = p.get("MaxInferenceUnits")
        if high is not None and int(high) < low:
            raise invalid(f"MaxInferenceUnits ({high}) must not be less than MinInferenceUnits ({low}).")
        with version.lock:
            if version.status in ("RUNNING", "STARTING"):
                raise in_use(f"The model version {version.name} is already {version.status}.")
            if version.status not in ("TRAINING_COMPLETED", "STOPPED", "FAILED"):
                raise in_use(f"The model version {version.name} is {version.status} and cannot be started.")
            version.min_units = low
            version.max_units = None if high is None else int(high)
            version.generation += 1
            version.set_status("STARTING")
        self.hosting.start(version, self.pace * self.faults.take_slow("StartProjectVersion"))
        return {"Status": "STARTING"}

    def _op_StopProjectVersion(self, p: dict[str, Any]) -> dict[str, Any]:
        _, version = self._version(str(p["ProjectVersionArn"]))
        with version.lock:
            if version.status == "STOPPING":
                return {"Status": "STOPPING"}
            if version.status not in ("RUNNING", "STARTING"):
                raise in_use(f"The model version {version.name} is {version.status}, not running.")
            version.generation += 1
            version.set_status("STOPPING")
        self.hosting.stop(version, self.pace * self.faults.take_slow("StopProjectVersion"))
        return {"Status": "STOPPING"}

    def _op_DeleteProjectVersion(self, p: dict[str, Any]) -> dict[str, Any]:
        project, version = self._version(str(p["ProjectVersionArn"]))
        with version.lock:
            if version.status == "DELETING":
                return {"Status": "DELETING"}
            if version.status in ("TRAINING_IN_PROGRESS", "STARTING", "RUNNING", "STOPPING"):
                raise in_use(
                    f"The model version {version.name} is {version.status}; stop it (or wait for training to end) "
                    "before deleting it."
                )
            version.generation += 1
            version.set_status("DELETING")

        def gone() -> None:
            with self.store.lock:
                if project.versions.get(version.name) is version:
                    del project.versions[version.name]
                self._forget(version.arn)
            self.hosting.delete_files(version)

        self.hosting.later(f"rekognition-delete-version-{version.name}", version.pace, gone)
        return {"Status": "DELETING"}

    # -------------------------------------------------------------------------------------- inference

    def _image_bytes(self, image: dict[str, Any]) -> bytes:
        data, s3_object = image.get("Bytes"), image.get("S3Object")
        if (data is None) == (s3_object is None):
            raise invalid("Image takes Bytes or S3Object, exactly one of them.")
        if data is not None:
            if len(data) > MAX_BYTES:
                raise ApiError(texts.IMAGE_TOO_LARGE, f"Image size is too large: {len(data)} bytes; at most 4 MB.")
            return bytes(data)
        where = s3_object or {}
        bucket, key = str(where.get("Bucket") or ""), str(where.get("Name") or "")
        size = self.s3.size(bucket, key) if bucket and key else None
        if size is None:
            raise ApiError(
                texts.INVALID_S3_OBJECT,
                "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
            )
        if size > MAX_IMAGE_BYTES:
            raise ApiError(texts.IMAGE_TOO_LARGE, f"Image size is too large: {size} bytes; at most 15 MB.")
        return self.s3.get(bucket, key)

    @staticmethod
    def _check_image(data: bytes) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as opened:
                kind = opened.format
                width, height = opened.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ApiError(texts.INVALID_IMAGE_FORMAT, "Request has invalid image format.") from exc
        if kind not in FORMATS:
            raise ApiError(texts.INVALID_IMAGE_FORMAT, f"Request has invalid image format: {kind}; PNG or JPEG only.")
        if max(width, height) > MAX_SIDE:
            raise ApiError(texts.IMAGE_TOO_LARGE, f"Image size is too large: {width} x {height} px; at most 4096 px.")
        if min(width, height) < MIN_SIDE or max(width, height) / max(1, min(width, height)) > MAX_ASPECT:
            raise invalid(
                f"Request has invalid parameters: the image is {width} x {height} px; each side must be at least "
                "64 px and the aspect ratio at most 20:1."
            )

    def _op_DetectCustomLabels(self, p: dict[str, Any]) -> dict[str, Any]:
        _, version = self._version(str(p["ProjectVersionArn"]))
        with version.lock:
            model = version.served if version.status == "RUNNING" else None
            status = version.status
        if model is None:
            raise ApiError(texts.NOT_READY, f"The model version {version.name} is {status}, not RUNNING.")
        data = self._image_bytes(p["Image"])
        self._check_image(data)
        max_results = p.get("MaxResults")
        labels = custom_labels(
            version,
            model,
            data,
            None if p.get("MinConfidence") is None else float(p["MinConfidence"]),
            None if max_results is None else int(max_results),
        )
        return {"CustomLabels": labels}

    # ------------------------------------------------------------------------------------------- tags

    def _tagged(self, arn: str) -> None:
        if not self.store.exists(arn):
            raise not_found(f"The resource {arn} does not exist.")

    def _op_TagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        with self.store.lock:
            merged = {**self.store.tags.get(arn, {}), **p["Tags"]}
            if len(merged) > MAX_TAGS:
                raise ApiError("ServiceQuotaExceededException", f"A resource can have at most {MAX_TAGS} tags.")
            self.store.tags[arn] = merged
        return {}

    def _op_UntagResource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        with self.store.lock:
            tags = self.store.tags.get(arn, {})
            for key in p["TagKeys"]:
                tags.pop(str(key), None)
        return {}

    def _op_ListTagsForResource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        with self.store.lock:
            return {"Tags": dict(self.store.tags.get(arn, {}))}
