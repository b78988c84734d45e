"""Trainer, Deployer and Predictor of the Rekognition Custom Labels provider.

This module is what the entry points load: it imports neither boto3 nor Pillow at module load.

Training (:class:`RekognitionTrainer`), as the service's walkthrough does it:

1. images are fitted to the service's limits (:mod:`mcv_rekognition.images`: PNG/JPEG, 64..4096 px a
   side) and staged to ``s3://bucket/prefix/images/``; Ground Truth manifests are written from the
   canonical dataset (:mod:`multicloud_cv.datasets.groundtruth`: image-level labels, or boxes in pixels
   with a class map) and staged under ``prefix/manifests/<fingerprint>/``;
2. the project is found by name or created (default ``mcv-<job id>``);
3. with a test split: CreateDataset TRAIN and TEST from the manifests, then, once both are
   CREATE_COMPLETE and their DatasetStats account for every manifest line (the service drops bad
   lines without failing: a mismatch fails the job before training is billed), CreateProjectVersion;
   without a test split: CreateProjectVersion with the manifest and ``TestingData.AutoCreate``.

Step 3's second half runs inside the status hook, so the core's backoff drives it and nothing here
sleeps. A failed version's StatusMessage is kept, with the first errors of the service's validation
output read back from S3 (:mod:`mcv_rekognition.results`), naming the image of each bad line. The
evaluation summary file (per-label F1, precision, recall, threshold) becomes the provider-reported
metrics, beside our own evaluation.

Deploying starts the model version (MinInferenceUnits, MaxInferenceUnits for autoscaling) and waits
for RUNNING; undeploying stops it and waits until STOPPED is confirmed (it bills by the inference-unit
hour while running, called or not); the accrued hosting cost is kept in the endpoint record.
Predicting sends the image bytes to DetectCustomLabels: the threshold becomes MinConfidence (0..100),
confidences become 0..1 and boxes (Left, Top, Width, Height ratios) normalised corners.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_rekognition import requests
from mcv_rekognition.settings import SETTINGS, Clients, Options
from multicloud_cv.aws import configured_region, method_name, region_problems
from multicloud_cv.capabilities import Capabilities
from multicloud_cv.errors import BadInput, ConfigError, InvalidImage, NotFound, ServiceError
from multicloud_cv.interfaces import (
    Deployer,
    NativeEndpoint,
    NativeJob,
    NativeModel,
    PlannedRequest,
    Predictor,
    PredictParams,
    ProviderPlugin,
    Trainer,
    TrainingSpec,
)
from multicloud_cv.runs import EndpointRecord, JobRecord, ModelRecord
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.waiting import Backoff

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.schema import Prediction

log = logging.getLogger(__name__)

PLANNED_JOB_ID = "job-planned"
MANIFEST_DATE = "2026-01-01T00:00:00.000000"
TRAINING_STATES: dict[str, JobState] = {
    "TRAINING_IN_PROGRESS": JobState.RUNNING,
    "TRAINING_COMPLETED": JobState.SUCCEEDED,
    "TRAINING_FAILED": JobState.FAILED,
}
MODEL_STATES: dict[str, tuple[EndpointState, bool]] = {  # (state, settling)
    "STARTING": (EndpointState.CREATING, False),
    "RUNNING": (EndpointState.READY, False),
    "FAILED": (EndpointState.FAILED, False),
    "STOPPING": (EndpointState.DELETED, True),
    "STOPPED": (EndpointState.DELETED, False),
    "TRAINING_COMPLETED": (EndpointState.DELETED, False),
    "DELETING": (EndpointState.DELETED, True),
}


def _capabilities() -> Capabilities:
    from mcv_rekognition.limits import capabilities_limits

    return Capabilities.declare(
        supported=[
            "task:classification",
            "task:multilabel",
            "task:detection",
            "compute:gpu",
            "batch_prediction",
            "endpoint_ttl",
        ],
        unsupported={
            "compute:cpu": "Rekognition Custom Labels chooses its own (GPU) training hardware",
            "compute:tpu": "TPUs are a Google Cloud feature; use --provider vertex",
            "export:onnx": "Custom Labels models are bound to the account and cannot be exported",
            "export:tflite": "Custom Labels models are bound to the account and cannot be exported",
            "export:coreml": "Custom Labels models are bound to the account and cannot be exported",
            "export:savedmodel": "Custom Labels models are bound to the account and cannot be exported",
            "export:tensorflow": "Custom Labels models are bound to the account and cannot be exported",
            "export:docker": "Custom Labels models are bound to the account and cannot be exported",
            "incremental_training": "every Custom Labels version trains from scratch on the project's datasets",
            "cancel": "Custom Labels has no call that stops a training in progress; remove the version afterwards",
            "resume": "Custom Labels has no call that resumes a training; train a new version",
        },
        # fit_images resizes and re-encodes images outside the side, format and byte limits before upload,
        # so those are not refusals here; what it cannot fix (aspect ratio, counts) stays a limit.
        limits=replace(
            capabilities_limits(), min_image_side=None, max_image_side=None, image_formats=None, max_image_bytes=None
        ),
    )


class _RekognitionBase(ProviderPlugin):
    name = "rekognition"
    api_version = "1.0"
    description = "AWS Rekognition Custom Labels: projects, datasets, model versions, start/stop, detect"
    settings = SETTINGS
    capabilities = _capabilities()
    requires = ("boto3", "PIL")
    install_hint = "pip install -e plugins/rekognition  (distribution multicloud-cv-rekognition)"
    default_compute = "gpu"
    undeploy_waits = True
    #: Polling starts at ``poll_s`` (default 15 s) and grows by 1.5 up to 120 s, the service's own waiter interval.
    backoff = Backoff(initial=15.0, factor=1.5, maximum=120.0)

    @functools.cached_property
    def options(self) -> Options:
        return Options.parse(self.config)

    @functools.cached_property
    def aws(self) -> Clients:
        return Clients(self.options)

    @property
    def emulated(self) -> bool:
        try:
            return self.aws.emulated()
        except Exception:  # no boto3, no region: not a question this property should fail on
            return False

    def _credential_problems(self) -> list[str]:
        try:
            options = self.options
        except ConfigError as exc:
            return [str(exc)]
        return region_problems(options.region, options.profile)

    def access_policy(self) -> dict[str, Any] | None:
        """The caller's least-privilege policy and the bucket policy the service needs (nothing is sent)."""
        from mcv_rekognition.iam import bucket_policy, user_policy

        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME (the policies name the bucket)")
        region = options.region or configured_region(options.profile) or "us-east-1"
        return {
            "caller": user_policy(options.bucket, options.prefix, region, project=options.project),
            "bucket_policy": bucket_policy(options.bucket, options.prefix),
        }

    def _call(self, operation: str, **params: Any) -> Any:
        """One Rekognition call, its errors translated (botocore already retried throttling and 5xx)."""
        client = self.aws.rekognition
        try:
            return getattr(client, method_name(operation))(**params)
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            text = exc.response.get("Error", {}).get("Message") or str(exc)
            if code == "ResourceNotFoundException":
                raise NotFound(f"{operation}: {text}") from exc
            if code in ("InvalidParameterException", "ResourceInUseException", "AccessDeniedException"):
                raise BadInput(f"{operation}: {code}: {text}") from exc
            if code == "LimitExceededException":
                raise ServiceError(f"{operation}: {text} (ask for a limit increase in Service Quotas)") from exc
            raise ServiceError(f"{operation}: {code}: {text}") from exc
        except Exception as exc:
            if type(exc).__name__ == "NoCredentialsError":
                self.aws.require_credentials()
            if type(exc).__module__.startswith("botocore"):
                raise ServiceError(f"{operation}: {exc}") from exc
            raise

    def _version(self, project_arn: str, version: str) -> dict[str, Any]:
        answer = self._call("DescribeProjectVersions", ProjectArn=project_arn, VersionNames=[version])
        found = answer.get("ProjectVersionDescriptions") or []
        if not found:
            raise NotFound(f"model version {version} is not in project {project_arn}")
        return dict(found[0])


# -- training ------------------------------------------------------------------------------------


class RekognitionTrainer(_RekognitionBase, Trainer):
    """Projects, datasets and model versions."""

    def _validate(self, spec: TrainingSpec) -> None:
        if spec.hyperparameters:
            names = ", ".join(sorted(spec.hyperparameters))
            raise BadInput(
                f"Rekognition Custom Labels takes no hyperparameters (got {names}): it chooses the model itself; "
                "remove the --hp options"
            )
        if spec.epochs is not None:
            log.info("--epochs is ignored: Rekognition Custom Labels decides how long it trains")
        if not self.options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME or set MCV_REKOGNITION_BUCKET")

    def _parts(self, dataset: Dataset) -> tuple[Dataset, Dataset | None]:
        """(train, test): validation images train too (the service has TRAIN and TEST only)."""
        train = [replace(i, split="train") for i in dataset.images if i.split != "test"]
        test = [i for i in dataset.images if i.split == "test"]
        return replace(dataset, images=train), (replace(dataset, images=test) if test else None)

    def _names(self, spec: TrainingSpec, job_id: str) -> tuple[str, str, str]:
        """(project, version, root URI)."""
        options = self.options
        project = options.project or requests.resource_name(job_id)
        root = f"s3://{options.bucket}/{options.prefix}" if options.prefix else f"s3://{options.bucket}"
        return project, requests.resource_name(job_id), root

    def _write_manifests(self, spec: TrainingSpec, workdir: Path, stage_images: bool) -> dict[str, Any]:
        """Fit and (optionally) stage the images, write the manifests; return what the requests need."""
        from mcv_rekognition.images import fit_images
        from multicloud_cv.datasets import groundtruth
        from multicloud_cv.staging import dataset_files, stage

        _, _, root = self._names(spec, PLANNED_JOB_ID)
        fitted = fit_images(spec.dataset, workdir / "fitted")
        images_uri = f"{root}/images"
        keys = dataset_files(fitted)
        if stage_images:
            storage = {"region_name": self.aws.region}
            stage(keys, images_uri, storage_options=storage)
        uris = {fitted.absolute(image): f"{images_uri}/{keys[fitted.absolute(image)]}" for image in fitted.images}
        train, test = self._parts(fitted)
        out: dict[str, Any] = {"image_keys": sorted(keys.values()), "manifests": {}}
        for kind, part in (("train", train), ("test", test)):
            if part is None:
                continue
            folder = workdir / f"manifest-{kind}"
            # a fixed creation-date keeps the manifests, their fingerprint and so the plan's keys reproducible
            groundtruth.write(part, folder, image_ref=_uri_lookup(part, uris), creation_date=MANIFEST_DATE)
            manifest = next(folder.glob("*.manifest"))
            target = workdir / f"{kind}.manifest"
            manifest.replace(target)
            text = target.read_bytes()
            out["manifests"][kind] = {"path": target, "lines": len(text.splitlines()), "sha": _sha(text)}
        fingerprint = _sha(b"".join(m["sha"].encode() for m in out["manifests"].values()))[:16]
        prefix = f"{self.options.prefix}/" if self.options.prefix else ""
        for kind, item in out["manifests"].items():
            item["key"] = f"{prefix}manifests/{fingerprint}/{kind}.manifest"
        return out

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        options = self.options
        project, version, _ = self._names(spec, PLANNED_JOB_ID)
        bucket = options.bucket or ""
        planned: list[PlannedRequest] = []
        with tempfile.TemporaryDirectory(prefix="mcv-rekognition-plan-") as tmp:
            written = self._write_manifests(spec, Path(tmp), stage_images=False)
        image_prefix = f"{options.prefix}/images" if options.prefix else "images"
        for key in written["image_keys"]:
            planned.append(_put(bucket, f"{image_prefix}/{key}"))
        for item in written["manifests"].values():
            planned.append(_put(bucket, item["key"]))
        tag_values = {"mcv:job": PLANNED_JOB_ID, "mcv:provider": self.name}
        project_arn = f"arn:aws:rekognition:{options.region or 'us-east-1'}:000000000000:project/{project}/0"
        planned.append(_planned("CreateProject", requests.create_project(project, tag_values)))
        output = f"{options.prefix}/output" if options.prefix else "output"
        manifests = written["manifests"]
        if "test" in manifests:
            for kind in ("train", "test"):
                params = requests.create_dataset(project_arn, kind.upper(), bucket, manifests[kind]["key"], tag_values)
                planned.append(_planned("CreateDataset", params))
            planned.append(
                _planned(
                    "CreateProjectVersion", requests.create_version(project_arn, version, bucket, output, tag_values)
                )
            )
        else:
            params = requests.create_version(
                project_arn, version, bucket, output, tag_values, train_manifest=(bucket, manifests["train"]["key"])
            )
            planned.append(_planned("CreateProjectVersion", params))
        return planned

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        from multicloud_cv.cost import training_cost

        region = self.options.region or "us-east-1"
        cost = training_cost(self.name, "training", 1, 3600.0, region)
        return cost, ["one training hour (Custom Labels trains 1-4 h; billed per training hour)"]

    # -- hooks ----------------------------------------------------------------------------------

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        self.aws.require_credentials()
        self._check_bucket()
        options = self.options
        bucket = options.bucket or ""
        project, version, _ = self._names(spec, job_id)
        with tempfile.TemporaryDirectory(prefix="mcv-rekognition-") as tmp:
            written = self._write_manifests(spec, Path(tmp), stage_images=True)
            s3 = self.aws.s3
            for item in written["manifests"].values():
                s3.upload_file(str(item["path"]), bucket, item["key"])
        tag_values = {"mcv:job": job_id, "mcv:provider": self.name}
        project_arn, created = self._project(project, tag_values)
        manifests = {kind: {"key": m["key"], "lines": m["lines"]} for kind, m in written["manifests"].items()}
        state: dict[str, Any] = {
            "classes": spec.dataset.classes,
            "project": project,
            "project_arn": project_arn,
            "created_project": created,
            "version": version,
            "bucket": bucket,
            "output_prefix": f"{options.prefix}/output" if options.prefix else "output",
            "manifests": manifests,
            "datasets": {},
            "region": self.aws.region,
        }
        if "test" in manifests:
            for kind in ("train", "test"):
                params = requests.create_dataset(project_arn, kind.upper(), bucket, manifests[kind]["key"], tag_values)
                state["datasets"][kind] = self._call("CreateDataset", **params)["DatasetArn"]
        else:
            self._create_version(state, tag_values)
        self._save(job_id, spec, state)
        return self._describe(version, self.store.job(job_id))

    def _save(self, job_id: str, spec: TrainingSpec | None, state: Mapping[str, Any]) -> None:
        record = self.store.job(job_id)
        base = dict(record.spec)
        if spec is not None:
            base.update({"epochs": spec.epochs, "hyperparameters": spec.hyperparameters, "compute": spec.compute})
        base["rekognition"] = dict(state)
        self.store.update_job(job_id, spec=base)

    def _check_bucket(self) -> None:
        """The bucket's region against the project's (GetBucketLocation); skipped with a note when not allowed."""
        s3 = self.aws.s3
        try:
            location = s3.get_bucket_location(Bucket=self.options.bucket).get("LocationConstraint") or "us-east-1"
        except s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise BadInput(f"bucket {self.options.bucket} does not exist; create it in {self.aws.region}") from exc
            log.info("bucket region check skipped: %s", code)
            return
        location = "eu-west-1" if location == "EU" else location
        if location != self.aws.region:
            raise BadInput(
                f"bucket {self.options.bucket} is in {location} but the project is in {self.aws.region}: use a bucket "
                f"in {self.aws.region} or -o region={location}"
            )

    def _project(self, name: str, tag_values: Mapping[str, str | None]) -> tuple[str, bool]:
        """The project's ARN, created when missing; refuses a project that already holds datasets."""
        answer = self._call("DescribeProjects", ProjectNames=[name])
        for found in answer.get("ProjectDescriptions") or []:
            if found.get("Datasets"):
                raise BadInput(
                    f"project {name} already has datasets; mcv trains a project from its own datasets: "
                    "pick another -o project=NAME or leave it unset (one project per job)"
                )
            return str(found["ProjectArn"]), False
        try:
            return str(self._call("CreateProject", **requests.create_project(name, tag_values))["ProjectArn"]), True
        except BadInput:  # created by a retried call whose answer was lost
            again = self._call("DescribeProjects", ProjectNames=[name]).get("ProjectDescriptions") or []
            if again:
                return str(again[0]["ProjectArn"]), True
            raise

    def _create_version(self, state: dict[str, Any], tag_values: Mapping[str, str | None]) -> None:
        manifests = state["manifests"]
        train = None if state["datasets"] else (state["bucket"], manifests["train"]["key"])
        params = requests.create_version(
            state["project_arn"], state["version"], state["bucket"], state["output_prefix"], tag_values, train
        )
        try:
            state["version_arn"] = self._call("CreateProjectVersion", **params)["ProjectVersionArn"]
        except BadInput as exc:
            if "ResourceInUse" not in str(exc):
                raise
            state["version_arn"] = self._version(state["project_arn"], state["version"])["ProjectVersionArn"]

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        state = dict(record.spec.get("rekognition") or {})
        if not state:
            raise NotFound(f"job {record.id} has no Rekognition state recorded")
        if "version_arn" not in state:
            waiting = self._datasets_ready(state)
            if waiting is not None:
                return waiting
            self._create_version(state, {"mcv:job": record.id, "mcv:provider": self.name})
            self._save(record.id, None, state)
        answer = self._version(state["project_arn"], state["version"])
        status = str(answer["Status"])
        job_state = TRAINING_STATES.get(
            status, JobState.SUCCEEDED if "EvaluationResult" in answer else JobState.RUNNING
        )
        message = answer.get("StatusMessage")
        native = NativeJob(
            native_id=str(answer["ProjectVersionArn"]),
            state=job_state,
            native_state=status,
            progress=f"{status}: {message}" if message else status,
            cost_usd=self._training_cost(answer, state),
        )
        if job_state is JobState.FAILED:
            native.failure_reason = self._failure(answer, state)
        if job_state is JobState.SUCCEEDED:
            metrics, thresholds = self._evaluation(answer)
            native.metrics = metrics
            native.model = NativeModel(
                native_id=str(answer["ProjectVersionArn"]),
                labels=list(state["classes"]),
                task=record.task,
                info={
                    "project_arn": state["project_arn"],
                    "version": state["version"],
                    "region": state.get("region"),
                    "thresholds": thresholds,
                },
            )
        return native

    def _datasets_ready(self, state: Mapping[str, Any]) -> NativeJob | None:
        """``None`` when both datasets are CREATE_COMPLETE and hold every manifest line; else the job's state."""
        pending = []
        for kind, arn in state["datasets"].items():
            description = self._call("DescribeDataset", DatasetArn=arn)["DatasetDescription"]
            status = str(description.get("Status"))
            if status in ("CREATE_FAILED", "UPDATE_FAILED"):
                reason = description.get("StatusMessage") or status
                return NativeJob(
                    native_id=state["version"],
                    state=JobState.FAILED,
                    native_state=f"DATASET_{status}",
                    failure_reason=(
                        f"the {kind.upper()} dataset failed: {reason} ({description.get('StatusMessageCode')})"
                    ),
                )
            if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
                pending.append(f"{kind.upper()} {status}")
                continue
            stats = description.get("DatasetStats") or {}
            lines = int(state["manifests"][kind]["lines"])
            errors = int(stats.get("ErrorEntries") or 0)
            total = int(stats.get("TotalEntries") or 0)
            if errors or total != lines:
                return NativeJob(
                    native_id=state["version"],
                    state=JobState.FAILED,
                    native_state="DATASET_INCOMPLETE",
                    failure_reason=(
                        f"the {kind.upper()} dataset holds {total} of the manifest's {lines} lines "
                        f"({errors} with errors, {stats.get('LabeledEntries')} labeled): the service rejected lines; "
                        f"training stopped before it was billed{self._entry_errors(arn)}"
                    ),
                )
        if pending:
            return NativeJob(
                native_id=state["version"],
                state=JobState.QUEUED,
                native_state="CREATING_DATASETS",
                progress="datasets: " + ", ".join(pending),
            )
        return None

    def _entry_errors(self, dataset_arn: str, limit: int = 3) -> str:
        """``: <image>: <codes>; ...`` for the first lines the service rejected (ListDatasetEntries HasErrors)."""
        from mcv_rekognition.results import first_line_errors

        try:
            entries = self._call("ListDatasetEntries", DatasetArn=dataset_arn, HasErrors=True, MaxResults=limit)
        except (BadInput, ServiceError) as exc:
            log.info("could not list the rejected dataset entries: %s", exc)
            return ""
        lines = "\n".join(entries.get("DatasetEntries") or []).encode()
        found = [f"{e.source_ref or f'line {e.line}'}: {', '.join(e.codes)}" for e in first_line_errors(lines, limit)]
        return ": " + "; ".join(found) if found else ""

    def _read_s3(self, s3_object: Mapping[str, Any] | None) -> bytes | None:
        if not s3_object or not s3_object.get("Bucket") or not s3_object.get("Name"):
            return None
        try:
            return bytes(self.aws.s3.get_object(Bucket=s3_object["Bucket"], Key=s3_object["Name"])["Body"].read())
        except Exception as exc:
            log.info("could not read s3://%s/%s: %s", s3_object.get("Bucket"), s3_object.get("Name"), exc)
            return None

    def _failure(self, answer: Mapping[str, Any], state: Mapping[str, Any]) -> str:
        """StatusMessage verbatim, then the manifest summary's errors and the first bad lines with their images."""
        from mcv_rekognition.results import (
            TESTING_VALIDATION_NAME,
            TRAINING_VALIDATION_NAME,
            first_line_errors,
            read_manifest_summary,
        )

        reason = str(answer.get("StatusMessage") or "TRAINING_FAILED")
        where = (answer.get("ManifestSummary") or {}).get("S3Object") or {}
        data = self._read_s3(where)
        if data is None:
            return reason
        try:
            summary = read_manifest_summary(data)
        except (ValueError, KeyError) as exc:
            return f"{reason} (the manifest summary could not be read: {exc})"
        details = [f"{e.code}: {e.message}" for e in summary.errors][:3]
        folder = str(where.get("Name", "")).rpartition("/")[0]
        for name in (TRAINING_VALIDATION_NAME, TESTING_VALIDATION_NAME):  # beside the summary (DG "Getting the
            key = f"{folder}/{name}" if folder else name  # validation results")
            body = self._read_s3({"Bucket": where.get("Bucket"), "Name": key})
            if body is None:
                continue
            for line in first_line_errors(body, limit=3):
                details.append(f"{line.source_ref or f'line {line.line}'}: {', '.join(line.codes)}")
        return reason + ("; " + "; ".join(details) if details else "")

    def _evaluation(self, answer: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
        """The provider-reported metrics (F1Score and the summary file) and the per-label thresholds."""
        from mcv_rekognition.results import read_evaluation_summary

        result = answer.get("EvaluationResult") or {}
        metrics: dict[str, float] = {}
        if result.get("F1Score") is not None:
            metrics["f1"] = float(result["F1Score"])
        data = self._read_s3((result.get("Summary") or {}).get("S3Object"))
        thresholds: dict[str, float] = {}
        if data is not None:
            try:
                summary = read_evaluation_summary(data)
            except (ValueError, KeyError) as exc:
                log.warning("the evaluation summary could not be read: %s", exc)
            else:
                metrics.update(summary.as_metrics())
                thresholds = {e.label: e.threshold for e in summary.per_label if e.threshold is not None}
        return metrics, thresholds

    def _training_cost(self, answer: Mapping[str, Any], state: Mapping[str, Any]) -> float | None:
        from multicloud_cv.cost import training_cost

        seconds = answer.get("BillableTrainingTimeInSeconds")
        if seconds is None:
            return None
        return training_cost(self.name, "training", 1, float(seconds), str(state.get("region") or "us-east-1"))

    def _remove(self, record: JobRecord) -> bool | None:
        """One step of removal in the service's order: stop and delete the version, the datasets, our project."""
        state = dict(record.spec.get("rekognition") or {})
        if not state:
            return None
        project_arn = state["project_arn"]
        try:
            version = self._version(project_arn, state["version"])
        except NotFound:
            version = None
        if version is not None:
            status = str(version["Status"])
            if status in ("RUNNING", "STARTING"):
                self._call("StopProjectVersion", ProjectVersionArn=version["ProjectVersionArn"])
                return False
            if status in ("STOPPING", "DELETING", "TRAINING_IN_PROGRESS"):
                return False
            self._call("DeleteProjectVersion", ProjectVersionArn=version["ProjectVersionArn"])
            return False
        busy = False
        for arn in state.get("datasets", {}).values():
            try:
                self._call("DeleteDataset", DatasetArn=arn)
                busy = True
            except NotFound:
                continue
            except BadInput:  # still being deleted
                busy = True
        if busy:
            return False
        if state.get("created_project"):
            found = self._call("DescribeProjects", ProjectNames=[state["project"]]).get("ProjectDescriptions") or []
            if found:
                if found[0].get("Status") != "DELETING":
                    self._call("DeleteProject", ProjectArn=project_arn)
                return False
        return True


def _uri_lookup(dataset: Dataset, uris: Mapping[Path, str]) -> Any:
    def image_ref(image: Any) -> str:
        return uris[dataset.absolute(image)]

    return image_ref


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(bucket: str, key: str) -> PlannedRequest:
    params = {"Bucket": bucket, "Key": key}
    requests.validate("s3", "PutObject", params)
    return PlannedRequest(service="s3", operation="PutObject", params=params)


def _planned(operation: str, params: dict[str, Any]) -> PlannedRequest:
    requests.validate("rekognition", operation, params)
    return PlannedRequest(service="rekognition", operation=operation, params=params)


# -- deploying -----------------------------------------------------------------------------------


class RekognitionDeployer(_RekognitionBase, Deployer):
    """StartProjectVersion / StopProjectVersion: a started model bills by the inference-unit hour."""

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        options = self.options
        params: dict[str, Any] = {
            "ProjectVersionArn": model.native_id,
            "MinInferenceUnits": options.min_inference_units,
        }
        if options.max_inference_units is not None:
            params["MaxInferenceUnits"] = options.max_inference_units
        try:
            self._call("StartProjectVersion", **params)
        except BadInput as exc:
            if "ResourceInUse" not in str(exc):
                raise
            log.info("model %s is already starting or running: using it", model.native_id)
        return self._describe_model(self.store.endpoint(endpoint_id))

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        return self._describe_model(record)

    def _model_version(self, record: EndpointRecord) -> dict[str, Any]:
        """The model version an endpoint record serves (its project and version name live with the model)."""
        info = self.store.model(record.model_id).info
        return self._version(str(info["project_arn"]), str(info["version"]))

    def _describe_model(self, record: EndpointRecord) -> NativeEndpoint:
        from multicloud_cv.cost import hosting_cost_per_hour

        version = self._model_version(record)
        status = str(version["Status"])
        state, settling = MODEL_STATES.get(status, (EndpointState.CREATING, False))
        units = int(version.get("MinInferenceUnits") or self.options.min_inference_units)
        per_hour = hosting_cost_per_hour(self.name, "inference_unit", units, self.aws.region)
        info: dict[str, Any] = {"inference_units": units, "region": self.aws.region}
        now = time.time()
        running_since = record.info.get("running_since")
        if state is EndpointState.READY and running_since is None:
            info["running_since"] = running_since = now
        if running_since is not None and per_hour is not None:
            until = record.info.get("stopped_at") or now
            if state is EndpointState.DELETED and not settling and "stopped_at" not in record.info:
                info["stopped_at"] = until = now
            info["accrued_usd"] = round((float(until) - float(running_since)) / 3600.0 * per_hour, 6)
        return NativeEndpoint(
            native_id=str(version["ProjectVersionArn"]),
            state=state,
            native_state=status,
            failure_reason=version.get("StatusMessage") if state is EndpointState.FAILED else None,
            cost_per_hour_usd=per_hour,
            info=info,
            settling=settling,
        )

    def _undeploy(self, record: EndpointRecord) -> None:
        version = self._model_version(record)
        if version["Status"] in ("STOPPED", "TRAINING_COMPLETED", "STOPPING"):
            raise NotFound(f"model {version['ProjectVersionArn']} is {version['Status']} already")
        self._call("StopProjectVersion", ProjectVersionArn=version["ProjectVersionArn"])


# -- predicting ----------------------------------------------------------------------------------


class RekognitionPredictor(_RekognitionBase, Predictor):
    """DetectCustomLabels with the image bytes; the answer in the shared schema."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        from mcv_rekognition.images import fit_image_bytes

        limit = self.capabilities.limits.max_predict_image_bytes
        if limit is not None and len(image) > limit:
            raise InvalidImage(f"{len(image)} bytes is over DetectCustomLabels' limit of {limit}; resize the image")
        image = fit_image_bytes(image, limit)  # sides below 64 px or formats the service refuses: fixed as in training
        return self._detect(endpoint, model, {"Bytes": image}, params)

    def _predict_uri(self, endpoint: EndpointRecord, model: ModelRecord, uri: str, params: PredictParams) -> Prediction:
        """An image the service reads from S3 itself (``Image.S3Object``; same bucket region as the model)."""
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise InvalidImage(f"{uri}: DetectCustomLabels reads s3://bucket/key objects only")
        bucket, _, key = uri[5:].partition("/")
        return self._detect(endpoint, model, {"S3Object": {"Bucket": bucket, "Name": key}}, params)

    def _detect(
        self, endpoint: EndpointRecord, model: ModelRecord, image: dict[str, Any], params: PredictParams
    ) -> Prediction:
        from multicloud_cv.schema import Box, Detection, LabelScore, Prediction

        task = model.task or "classification"
        threshold = params.threshold
        if threshold is None and task != "classification":
            threshold = 0.5
        request: dict[str, Any] = {"ProjectVersionArn": endpoint.native_id, "Image": image}
        request["MinConfidence"] = 0.0 if threshold is None else threshold * 100.0
        started = time.perf_counter()
        try:
            answer = self._call("DetectCustomLabels", **request)
        except BadInput as exc:
            if "InvalidImageFormat" in str(exc) or "ImageTooLarge" in str(exc) or "InvalidS3Object" in str(exc):
                raise InvalidImage(str(exc)) from exc
            raise
        latency = (time.perf_counter() - started) * 1000.0
        index = {name: n for n, name in enumerate(model.labels)}
        labels: list[LabelScore] = []
        detections: list[Detection] = []
        for found in answer.get("CustomLabels") or []:
            name = str(found.get("Name"))
            if name not in index:
                raise ServiceError(f"endpoint {endpoint.id} answered label '{name}', which the model does not have")
            confidence = min(1.0, max(0.0, float(found.get("Confidence", 0.0)) / 100.0))
            box = (found.get("Geometry") or {}).get("BoundingBox")
            if box is None:
                labels.append(LabelScore(name=name, index=index[name], confidence=confidence))
                continue
            left, top = float(box["Left"]), float(box["Top"])
            x0, y0 = max(0.0, left), max(0.0, top)
            x1, y1 = min(1.0, left + float(box["Width"])), min(1.0, top + float(box["Height"]))
            if x1 > x0 and y1 > y0:
                detections.append(
                    Detection(
                        name=name,
                        index=index[name],
                        confidence=confidence,
                        box=Box(x_min=x0, y_min=y0, x_max=x1, y_max=y1),
                    )
                )
        labels.sort(key=lambda item: -item.confidence)
        detections.sort(key=lambda item: -item.confidence)
        cap = params.top_k or (5 if task == "classification" else None)
        return Prediction(
            provider=self.name,
            model_id=model.id,
            task=task,  # type: ignore[arg-type]
            labels=labels[:cap] if cap else labels,
            detections=detections[: params.top_k] if params.top_k else detections,
            latency_ms=latency,
            raw={"CustomLabels": answer.get("CustomLabels") or []},
        )


__all__ = ["RekognitionDeployer", "RekognitionPredictor", "RekognitionTrainer"]
