"""Trainer, Deployer and Predictor of the SageMaker provider (built-in image classification and object detection).

This module is what the entry points load: it imports neither boto3 nor botocore at module load.

Training (:class:`SageMakerTrainer`): the dataset is written as the algorithm's channels
(:mod:`mcv_sagemaker.channels`: RecordIO, images + ``.lst`` / JSON annotations, or augmented manifests
in Pipe mode), staged to ``s3://bucket/prefix/input/<fingerprint>/<mode>/`` (objects already there are
skipped), and one CreateTrainingJob is sent (:mod:`mcv_sagemaker.requests`). Before anything is
uploaded: the hyperparameters are validated against the documented list
(:mod:`mcv_sagemaker.algorithms`), the instance type must be a GPU type, mini_batch_size must fit
both channels, and the account is checked (:mod:`mcv_sagemaker.checks`: bucket region, the role's
access, quotas), each check skipped with a note where the caller may not ask. The job name is
derived from our job id, so a create retried after a lost response finds its own job.

Status maps DescribeTrainingJob to the shared states; the secondary status and its latest message
are the progress; FailureReason is kept verbatim; FinalMetricDataList becomes the metrics;
BillableTimeInSeconds times the instance price (:mod:`multicloud_cv.cost`) the cost.

Deploying (:class:`SageMakerDeployer`) creates a model, an endpoint config and an endpoint named for
our endpoint id; a failure part-way deletes what was made. Undeploying deletes all three and is
idempotent. Predicting (:class:`SageMakerPredictor`) sends one image to InvokeEndpoint and maps the
algorithm's JSON to the shared schema with the class names stored with the model.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcv_sagemaker import requests
from mcv_sagemaker.settings import SETTINGS, Clients, Options
from multicloud_cv.aws import method_name, region_problems
from multicloud_cv.capabilities import Capabilities, Limits
from multicloud_cv.errors import BadInput, ConfigError, InvalidImage, MCVError, NotFound, ServiceError
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
    from mcv_sagemaker.channels import PreparedInput
    from multicloud_cv.datasets.preflight import PreflightContext
    from multicloud_cv.schema import Prediction

log = logging.getLogger(__name__)

#: The request body limit of InvokeEndpoint (botocore sagemaker-runtime model, cloud-apis.md 1.4).
MAX_INVOKE_BYTES = 6_291_456

IMAGE_CONTENT = "application/x-image"
#: The job id a plan names its job with (a real submission uses the recorded job's id).
PLANNED_JOB_ID = "job-planned"

#: GPU instance families the built-in image algorithms train on (cloud-apis.md 1.6 and 1.8).
GPU_FAMILIES = ("ml.p2.", "ml.p3.", "ml.p3dn.", "ml.p4d.", "ml.p4de.", "ml.p5.", "ml.g4dn.", "ml.g5.", "ml.g6.")

JOB_STATES: dict[str, JobState] = {
    "InProgress": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Stopping": JobState.RUNNING,
    "Stopped": JobState.CANCELLED,
    "Deleting": JobState.CANCELLED,
}
ENDPOINT_STATES: dict[str, EndpointState] = {
    "Creating": EndpointState.CREATING,
    "Updating": EndpointState.CREATING,
    "SystemUpdating": EndpointState.READY,
    "RollingBack": EndpointState.CREATING,
    "InService": EndpointState.READY,
    "Failed": EndpointState.FAILED,
    "UpdateRollbackFailed": EndpointState.FAILED,
    "OutOfService": EndpointState.FAILED,
    "Deleting": EndpointState.DELETED,
}

CAPABILITIES = Capabilities.declare(
    supported=[
        "task:classification",
        "task:multilabel",
        "task:detection",
        "compute:gpu",
        "incremental_training",
        "batch_prediction",
        "endpoint_ttl",
        "cancel",
    ],
    unsupported={
        "compute:cpu": "SageMaker's built-in image algorithms train on GPU instances only (P2, P3, G4dn, G5)",
        "compute:tpu": "TPUs are a Google Cloud feature; use --provider vertex",
        "export:onnx": "the built-in algorithms produce an MXNet model.tar.gz, not ONNX",
        "export:tflite": "the built-in algorithms produce an MXNet model.tar.gz only",
        "export:coreml": "the built-in algorithms produce an MXNet model.tar.gz only",
        "export:savedmodel": "the built-in algorithms produce an MXNet model.tar.gz only",
        "export:tensorflow": "the built-in algorithms produce an MXNet model.tar.gz only",
        "export:docker": "the built-in algorithms produce an MXNet model.tar.gz only; it serves from SageMaker's image",
        "resume": "a stopped SageMaker training job cannot be resumed; train again from its model (--base-model)",
    },
    limits=Limits(
        min_images_per_label=1,
        min_labels=2,
        max_predict_image_bytes=MAX_INVOKE_BYTES,
        image_formats=frozenset({"JPEG", "PNG"}),
    ),
)


class _SageMakerBase(ProviderPlugin):
    name = "sagemaker"
    api_version = "1.0"
    description = "AWS SageMaker built-in image classification and object detection, endpoints, batch transform"
    settings = SETTINGS
    capabilities = CAPABILITIES
    requires = ("boto3",)
    install_hint = "pip install -e plugins/sagemaker  (distribution multicloud-cv-sagemaker)"
    default_compute = "gpu"
    undeploy_waits = True
    #: Polling starts at ``poll_s`` (default 10 s) and grows by 1.5 up to 60 s: 14 status calls in 10 minutes.
    backoff = Backoff(initial=10.0, factor=1.5, maximum=60.0)

    @functools.cached_property
    def options(self) -> Options:
        """The settings, parsed (a bad value is a :class:`ConfigError`)."""
        return Options.parse(self.config)

    @functools.cached_property
    def aws(self) -> Clients:
        """boto3 clients for this provider's session."""
        return Clients(self.options)

    @property
    def emulated(self) -> bool:
        try:
            return self.aws.emulated()
        except Exception:  # no boto3, no region: not a question this property should fail on
            return False

    def _credential_problems(self) -> list[str]:
        """Bad settings and a missing region, found without importing boto3 (``mcv providers`` stays fast).

        Credentials are not judged here: an instance or container role cannot be seen without a network
        call. A missing one is a clear error when the first request is made (:meth:`_require_credentials`).
        """
        try:
            options = self.options
        except ConfigError as exc:
            return [str(exc)]
        return region_problems(options.region, options.profile)

    def _require_credentials(self) -> None:
        self.aws.require_credentials()

    def access_policy(self) -> dict[str, Any] | None:
        """The caller's least-privilege IAM policy and the execution role's, from the settings (nothing is sent)."""
        from mcv_sagemaker.iam import execution_role_policy, least_privilege_policy

        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME (the policy names the bucket)")
        region = options.region or "us-east-1"
        account, role_name = _role_parts(options.role_arn)
        return {
            "caller": least_privilege_policy(options.bucket, options.prefix, region, account, role_name=role_name),
            "execution_role": execution_role_policy(
                options.bucket, options.prefix, region, account, output_prefix=f"{options.prefix}/output"
            ),
            "execution_role_trust": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        }

    def _sagemaker_call(self, operation: str, **params: Any) -> Any:
        """One SageMaker control-plane call, its errors translated (botocore retried throttling and 5xx already)."""
        client = self.aws.sagemaker
        try:
            return getattr(client, method_name(operation))(**params)
        except client.exceptions.ResourceLimitExceeded as exc:
            raise ServiceError(f"{operation}: {_message(exc)} (ask for a quota increase in Service Quotas)") from exc
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            text = _message(exc)
            if code == "ValidationException" and "Could not find" in text:
                raise NotFound(text) from exc
            if code in ("ValidationException", "ResourceInUse", "AccessDeniedException"):
                raise BadInput(f"{operation}: {text}") from exc
            raise ServiceError(f"{operation}: {code}: {text}") from exc
        except Exception as exc:
            if type(exc).__name__ == "NoCredentialsError":
                self._require_credentials()
            if type(exc).__module__.startswith("botocore"):
                raise ServiceError(f"{operation}: {exc}") from exc
            raise


def _role_parts(role_arn: str | None) -> tuple[str | None, str | None]:
    """``(account, role name)`` from ``arn:aws:iam::123456789012:role/path/Name``; ``None`` parts when absent."""
    if not role_arn or ":role/" not in role_arn:
        return None, None
    account = role_arn.split(":")[4] or None
    return account, role_arn.rsplit("/", 1)[-1]


def _message(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Message") or exc)


# -- training ------------------------------------------------------------------------------------


class SageMakerTrainer(_SageMakerBase, Trainer):
    """Built-in image-classification and object-detection training jobs."""

    def _algorithm(self, spec: TrainingSpec) -> str:
        from mcv_sagemaker.algorithms import algorithm_for_task

        return algorithm_for_task(spec.task.value)

    def _counts(self, spec: TrainingSpec) -> tuple[int, int, int]:
        from mcv_sagemaker.channels import training_splits

        train, validation, _ = training_splits(spec.dataset)
        max_boxes = max((len(i.boxes) for i in train + validation), default=0)
        return len(train), len(validation), max_boxes

    def _base(self, spec: TrainingSpec) -> ModelRecord | None:
        if not spec.base_model:
            return None
        try:
            base = self.store.model(spec.base_model)
        except NotFound:
            raise BadInput(f"base model {spec.base_model} is not a recorded model; see `mcv status`") from None
        if base.provider != self.name or not base.artifact:
            raise BadInput(
                f"base model {spec.base_model} was not trained on SageMaker; it cannot seed incremental training"
            )
        return base

    def hyperparameters(self, spec: TrainingSpec) -> dict[str, str]:
        """The job's hyperparameters: derived from the spec and the data, then the user's ``--hp`` on top.

        For incremental training, ``num_layers``, ``image_shape`` and ``base_network`` come from the base
        model unless given. ``mini_batch_size`` is lowered to the smaller channel when that holds fewer than
        32 images (the algorithm fails otherwise).
        """
        from mcv_sagemaker.algorithms import parse_image_shape, spec_hyperparameters

        algorithm = self._algorithm(spec)
        n_train, n_validation, max_boxes = self._counts(spec)
        user = {key: _hp_str(value) for key, value in spec.hyperparameters.items()}
        base = self._base(spec)
        before = (base.info.get("hyperparameters") or {}) if base else {}
        inherited = {k: str(v) for k, v in before.items() if k in _INHERITED}
        shape_text = user.get("image_shape") or inherited.get("image_shape")
        try:
            shape = parse_image_shape(algorithm, shape_text) if shape_text else None
        except (BadInput, ValueError):
            shape = None  # reported by _validate with the expected form
        derived = spec_hyperparameters(
            algorithm,
            task=spec.task.value,
            num_classes=len(spec.dataset.classes),
            num_training_samples=n_train,
            epochs=spec.epochs,
            multi_label=spec.task.value == "multilabel",
            image_shape=shape,
            max_boxes=max_boxes,
        )
        if n_validation:
            derived["mini_batch_size"] = str(min(int(derived.get("mini_batch_size", "32")), n_train, n_validation))
        if self.options.instance_count > 1:
            derived["kv_store"] = "dist_sync"  # several instances: synchronous distributed training
        return {**derived, **inherited, **user}

    def _validate(self, spec: TrainingSpec) -> None:
        from mcv_sagemaker.algorithms import hyperparameter_problems

        options = self.options
        if not options.instance_type.startswith(GPU_FAMILIES):
            raise BadInput(
                f"instance_type {options.instance_type} is not a GPU type: the built-in image algorithms train on "
                "P2, P3, G4dn or G5 instances; set -o instance_type=ml.p3.2xlarge (or ml.g4dn.xlarge)"
            )
        if options.label_format == "class-id" and options.input_mode != "manifest" and spec.task.value == "multilabel":
            raise BadInput(
                "label_format class-id is selected by the augmented manifest's content type only; "
                "set -o input_mode=manifest or keep -o label_format=multi-hot"
            )
        algorithm = self._algorithm(spec)
        values = self.hyperparameters(spec)
        _, _, max_boxes = self._counts(spec)
        content_type = IMAGE_CONTENT if options.input_mode == "images" else None
        problems = hyperparameter_problems(algorithm, values, max_boxes=max_boxes, content_type=content_type)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise BadInput(f"{algorithm} hyperparameters: {problems[0]}{more}")
        n_train, n_validation, _ = self._counts(spec)
        batch = int(values.get("mini_batch_size", "32"))
        for split, count in (("train", n_train), ("validation", n_validation)):
            if count < batch:
                raise BadInput(
                    f"the {split} channel has {count} images, fewer than mini_batch_size {batch} (SageMaker fails "
                    "with 'The number of input images must be bigger or equal to the mini_batch_size.'): "
                    f"pass --hp mini_batch_size={max(1, min(n_train, n_validation))} or add images"
                )
        self._check_base(spec, values)

    def _check_base(self, spec: TrainingSpec, values: Mapping[str, str]) -> None:
        base = self._base(spec)
        if base is None:
            return
        from mcv_sagemaker.algorithms import defaults

        documented = defaults(self._algorithm(spec))
        before = {**documented, **(base.info.get("hyperparameters") or {})}
        now = {**documented, **values}
        for key in ("num_layers", "image_shape", "num_classes", "base_network"):
            if key in before and key in now and str(before[key]).replace(" ", "") != str(now[key]).replace(" ", ""):
                raise BadInput(
                    f"incremental training needs the base model's {key}: it was {before[key]}, this job asks "
                    f"{now[key]}; drop --hp {key} or train from scratch"
                )
        if base.labels and list(base.labels) != list(spec.dataset.classes):
            raise BadInput(
                f"incremental training needs the base model's classes in the same order ({', '.join(base.labels)}); "
                f"the dataset has {', '.join(spec.dataset.classes)}"
            )

    def _preflight_context(self, spec: TrainingSpec) -> PreflightContext | None:
        from mcv_sagemaker.algorithms import OBJECT_DETECTION
        from multicloud_cv.datasets.preflight import PreflightContext

        values = self.hyperparameters(spec)
        label_width = int(values.get("label_width", "350")) if self._algorithm(spec) == OBJECT_DETECTION else None
        return PreflightContext(
            provider=self.name, region=self.options.region, bucket=self.options.bucket, label_width=label_width
        )

    # -- the request ----------------------------------------------------------------------------

    def _names(self, job_id: str) -> tuple[str, str, str]:
        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME or set MCV_SAGEMAKER_BUCKET")
        root = f"s3://{options.bucket}/{options.prefix}" if options.prefix else f"s3://{options.bucket}"
        return requests.resource_name(job_id), root, f"{root}/output"

    def _request(self, spec: TrainingSpec, job_id: str, prepared: PreparedInput, input_uri: str) -> dict[str, Any]:
        from mcv_sagemaker.channels import MODEL, Channel
        from mcv_sagemaker.image_uris import training_image

        name, _, output_uri = self._names(job_id)
        options = self.options
        channels = list(prepared.channels)
        base = self._base(spec)
        if base is not None and base.artifact:
            channels.append(Channel("model", MODEL, uri=base.artifact))
        return requests.training_job(
            name=name,
            image=training_image(self._algorithm(spec), self.aws.region),
            role_arn=options.role_arn or "",
            channels=channels,
            input_uri=input_uri,
            output_uri=output_uri,
            hyperparameters=self.hyperparameters(spec),
            instance_type=options.instance_type,
            instance_count=options.instance_count,
            volume_gb=options.volume_gb,
            max_runtime_s=options.max_runtime_s,
            input_mode=prepared.training_input_mode,
            tag_values={"mcv:job": job_id, "mcv:provider": self.name, "mcv:dataset": spec.dataset.root.name},
        )

    def _prepare(self, spec: TrainingSpec, workdir: Path) -> tuple[PreparedInput, str]:
        from mcv_sagemaker.channels import prepare_input

        _, root, _ = self._names("x")
        mode = self.options.input_mode

        def input_uri(fingerprint: str) -> str:
            return f"{root}/input/{fingerprint}/{mode}"

        prepared = prepare_input(
            spec.dataset, spec.task.value, mode, workdir, input_uri, label_format=self.options.label_format
        )
        return prepared, input_uri(prepared.fingerprint)

    def _plan(self, spec: TrainingSpec) -> list[PlannedRequest]:
        """One PutObject per staged file (objects already there are skipped when it runs), then CreateTrainingJob.

        Each request passes botocore's parameter validation against the service model.
        """
        with tempfile.TemporaryDirectory(prefix="mcv-sagemaker-plan-") as tmp:
            prepared, input_uri = self._prepare(spec, Path(tmp))
            request = self._request(spec, PLANNED_JOB_ID, prepared, input_uri)
        bucket, _, prefix = input_uri.removeprefix("s3://").partition("/")
        planned = []
        for key in sorted(prepared.files.values()):
            params = {"Bucket": bucket, "Key": f"{prefix}/{key}"}
            requests.validate("s3", "PutObject", params)
            planned.append(PlannedRequest(service="s3", operation="PutObject", params=params))
        requests.validate("sagemaker", "CreateTrainingJob", request)
        planned.append(PlannedRequest(service="sagemaker", operation="CreateTrainingJob", params=request))
        return planned

    def _estimate_cost(self, spec: TrainingSpec) -> tuple[float | None, list[str]]:
        from multicloud_cv.cost import training_cost

        options = self.options
        region = options.region or "us-east-1"
        hours = max(1.0, (spec.epochs or 30) / 30)
        cost = training_cost(self.name, options.instance_type, options.instance_count, hours * 3600, region)
        note = (
            f"{options.instance_count} x {options.instance_type} for about {hours:g} h (a guess from the epochs; "
            "SageMaker bills each second the instances run, see BillableTimeInSeconds after the job)"
        )
        return cost, [note] if cost is not None else [f"no price known for {options.instance_type} in {region}"]

    # -- hooks ----------------------------------------------------------------------------------

    def _submit(self, spec: TrainingSpec, job_id: str) -> NativeJob:
        from multicloud_cv.staging import stage

        self._require_credentials()
        self._account_checks()
        name, _, _ = self._names(job_id)
        with tempfile.TemporaryDirectory(prefix="mcv-sagemaker-") as tmp:
            prepared, input_uri = self._prepare(spec, Path(tmp))
            request = self._request(spec, job_id, prepared, input_uri)
            storage = {
                "region_name": self.aws.region,
                **({"profile": self.options.profile} if self.options.profile else {}),
            }
            stage(prepared.files, input_uri, storage_options=storage)
        self.store.update_job(
            job_id,
            spec={
                "epochs": spec.epochs,
                "hyperparameters": spec.hyperparameters,
                "compute": spec.compute,
                "classes": spec.dataset.classes,
                "algorithm": self._algorithm(spec),
                "instance_type": self.options.instance_type,
                "instance_count": self.options.instance_count,
                "region": self.aws.region,
                "input_uri": input_uri,
                "image": request["AlgorithmSpecification"]["TrainingImage"],
            },
        )
        try:
            self._sagemaker_call("CreateTrainingJob", **request)
        except BadInput as exc:
            if "already exists" not in str(exc) and "must be unique" not in str(exc):
                raise
            log.info("training job %s exists already (a retried create): using it", name)
        return self._describe(name, self.store.job(job_id))

    def _account_checks(self) -> None:
        """Bucket region, the role's access and quotas, before anything is uploaded (each may be skipped)."""
        from mcv_sagemaker import checks
        from multicloud_cv.datasets.preflight import Severity

        options = self.options
        findings = checks.run_all(self.aws, options)
        for finding in findings:
            if finding.severity is not Severity.ERROR:
                log.info("sagemaker preflight: %s", finding.message)
        errors = [f for f in findings if f.severity is Severity.ERROR]
        if errors:
            first = errors[0]
            raise BadInput(f"{first.message}: {first.fix}" if first.fix else first.message)

    def _describe(self, native_id: str, record: JobRecord) -> NativeJob:
        answer = self._sagemaker_call("DescribeTrainingJob", TrainingJobName=native_id)
        status = str(answer["TrainingJobStatus"])
        secondary = str(answer.get("SecondaryStatus") or status)
        state = JOB_STATES.get(status, JobState.RUNNING)
        if status == "InProgress" and secondary in ("Starting", "Pending"):
            state = JobState.QUEUED
        transitions = answer.get("SecondaryStatusTransitions") or []
        message = transitions[-1].get("StatusMessage") if transitions else None
        metrics = {
            str(m["MetricName"]): float(m["Value"]) for m in answer.get("FinalMetricDataList") or [] if "Value" in m
        }
        native = NativeJob(
            native_id=native_id,
            state=state,
            native_state=f"{status}/{secondary}",
            failure_reason=answer.get("FailureReason"),
            metrics=metrics,
            progress=f"{secondary}: {message}" if message else secondary,
            cost_usd=self._job_cost(answer, record),
        )
        if state is JobState.SUCCEEDED:
            native.model = NativeModel(
                native_id=native_id,
                artifact=answer["ModelArtifacts"]["S3ModelArtifacts"],
                labels=list(record.spec.get("classes") or []),
                task=record.task,
                info={
                    "algorithm": record.spec.get("algorithm"),
                    "image": answer.get("AlgorithmSpecification", {}).get("TrainingImage") or record.spec.get("image"),
                    "hyperparameters": answer.get("HyperParameters") or {},
                    "region": record.spec.get("region"),
                    "role_arn": answer.get("RoleArn"),
                    "training_job": native_id,
                },
            )
        return native

    def _job_cost(self, answer: Mapping[str, Any], record: JobRecord) -> float | None:
        from multicloud_cv.cost import training_cost

        seconds = answer.get("BillableTimeInSeconds")
        if seconds is None:
            return None
        resources = answer.get("ResourceConfig") or {}
        return training_cost(
            self.name,
            str(resources.get("InstanceType") or record.spec.get("instance_type")),
            int(resources.get("InstanceCount") or 1),
            float(seconds),
            str(record.spec.get("region") or "us-east-1"),
        )

    def _cancel(self, native_id: str) -> None:
        self._sagemaker_call("StopTrainingJob", TrainingJobName=native_id)

    def _logs(self, native_id: str) -> Iterator[str]:
        answer = self._sagemaker_call("DescribeTrainingJob", TrainingJobName=native_id)
        for step in answer.get("SecondaryStatusTransitions") or []:
            started = step.get("StartTime")
            when = started.isoformat() if hasattr(started, "isoformat") else str(started)
            yield f"{when} {step.get('Status')}: {step.get('StatusMessage') or ''}".rstrip()
        if answer.get("FailureReason"):
            yield f"FailureReason: {answer['FailureReason']}"


_INHERITED = ("num_layers", "image_shape", "base_network")


def _hp_str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# -- deploying -----------------------------------------------------------------------------------


class SageMakerDeployer(_SageMakerBase, Deployer):
    """Model, endpoint config and endpoint; undeploy deletes all three."""

    def _deploy(self, model: ModelRecord, endpoint_id: str, ttl_s: float | None) -> NativeEndpoint:
        if not model.artifact:
            raise BadInput(f"model {model.id} has no model.tar.gz recorded; train it again")
        options = self.options
        name = requests.resource_name(endpoint_id)
        image = str(model.info.get("image") or "")
        role = str(model.info.get("role_arn") or options.role_arn or "")
        tag_values = {"mcv:endpoint": endpoint_id, "mcv:model": model.id, "mcv:provider": self.name}
        made: list[tuple[str, dict[str, str]]] = []
        try:
            self._sagemaker_call(
                "CreateModel",
                **requests.model(
                    name=name, image=image, model_data_url=model.artifact, role_arn=role, tag_values=tag_values
                ),
            )
            made.append(("DeleteModel", {"ModelName": name}))
            config = requests.endpoint_config(
                name=name,
                model_name=name,
                instance_type=options.endpoint_instance_type,
                instance_count=options.endpoint_instance_count,
                tag_values=tag_values,
            )
            self._sagemaker_call("CreateEndpointConfig", **config)
            made.append(("DeleteEndpointConfig", {"EndpointConfigName": name}))
            self._sagemaker_call(
                "CreateEndpoint", **requests.endpoint(name=name, config_name=name, tag_values=tag_values)
            )
        except BaseException:
            for operation, params in reversed(made):
                try:
                    self._sagemaker_call(operation, **params)
                except Exception as cleanup_error:  # report the first error, log the second
                    log.warning("could not undo %s after a failed deploy: %s", operation, cleanup_error)
            raise
        return self._describe_endpoint_named(name)

    def _describe_endpoint(self, record: EndpointRecord) -> NativeEndpoint:
        return self._describe_endpoint_named(record.native_id or "")

    def _describe_endpoint_named(self, name: str) -> NativeEndpoint:
        from multicloud_cv.cost import hosting_cost_per_hour

        answer = self._sagemaker_call("DescribeEndpoint", EndpointName=name)
        status = str(answer["EndpointStatus"])
        options = self.options
        return NativeEndpoint(
            native_id=name,
            state=ENDPOINT_STATES.get(status, EndpointState.CREATING),
            native_state=status,
            settling=status == "Deleting",
            url=_invocation_url(self.aws.runtime, name),
            failure_reason=answer.get("FailureReason"),
            cost_per_hour_usd=hosting_cost_per_hour(
                self.name, options.endpoint_instance_type, options.endpoint_instance_count, self.aws.region
            ),
            info={"endpoint_name": name, "region": self.aws.region},
        )

    def _undeploy(self, record: EndpointRecord) -> None:
        name = record.native_id or ""
        gone = 0
        for operation, params in (
            ("DeleteEndpoint", {"EndpointName": name}),
            ("DeleteEndpointConfig", {"EndpointConfigName": name}),
            ("DeleteModel", {"ModelName": name}),
        ):
            try:
                self._sagemaker_call(operation, **params)
            except NotFound:
                gone += 1
        if gone == 3:
            raise NotFound(f"endpoint {name} and its config and model were already deleted")


def _invocation_url(runtime: Any, name: str) -> str:
    return f"{str(runtime.meta.endpoint_url).rstrip('/')}/endpoints/{name}/invocations"


# -- predicting ----------------------------------------------------------------------------------


class SageMakerPredictor(_SageMakerBase, Predictor):
    """InvokeEndpoint with one image; the algorithm's JSON mapped to the shared schema."""

    def _predict(self, endpoint: EndpointRecord, model: ModelRecord, image: bytes, params: PredictParams) -> Prediction:
        from multicloud_cv.schema import Prediction

        if len(image) > MAX_INVOKE_BYTES:
            raise InvalidImage(
                f"{len(image)} bytes is over InvokeEndpoint's limit of {MAX_INVOKE_BYTES}; resize the image first"
            )
        runtime = self.aws.runtime
        started = time.perf_counter()
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint.native_id, ContentType=_content_type(image), Accept="application/json", Body=image
            )
            body = answer["Body"].read()
        except runtime.exceptions.ModelError as exc:
            raise InvalidImage(f"endpoint {endpoint.id} could not read the image: {_message(exc)}") from exc
        except runtime.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ServiceError(f"InvokeEndpoint on {endpoint.native_id}: {code}: {_message(exc)}") from exc
        latency = (time.perf_counter() - started) * 1000.0
        raw = _decode(body, endpoint.id)
        return Prediction(
            provider=self.name,
            model_id=model.id,
            task=model.task or "classification",  # type: ignore[arg-type]
            labels=[] if model.task == "detection" else self._labels(raw, model, params, endpoint.id),
            detections=self._detections(raw, model, params, endpoint.id) if model.task == "detection" else [],
            latency_ms=latency,
            raw=raw,
        )

    def _transform(
        self, model: ModelRecord, images: list[Path], params: PredictParams, timeout: float | None
    ) -> list[Prediction]:
        """CreateTransformJob over the images staged to S3; each ``<key>.out`` read back into the shared schema.

        A model resource is made for the job and deleted afterwards (whatever the outcome); the job's
        own record stays in SageMaker, as every transform job's does.
        """
        from multicloud_cv.runs import new_id
        from multicloud_cv.schema import Prediction
        from multicloud_cv.staging import stage
        from multicloud_cv.waiting import poll

        options = self.options
        if not options.bucket:
            raise ConfigError("setting 'bucket' is not set: pass -o bucket=NAME")
        batch_id = new_id("batch")
        name = requests.resource_name(batch_id)
        root = f"s3://{options.bucket}/{options.prefix}/transform/{batch_id}"
        keys = {path: f"{n:06d}{path.suffix.lower()}" for n, path in enumerate(images)}
        stage(keys, f"{root}/input", storage_options={"region_name": self.aws.region})
        kinds = {_content_type(path.read_bytes()) for path in images}
        content_type = kinds.pop() if len(kinds) == 1 else IMAGE_CONTENT
        tag_values = {"mcv:model": model.id, "mcv:provider": self.name, "mcv:batch": batch_id}
        role = str(model.info.get("role_arn") or options.role_arn or "")
        image = str(model.info.get("image") or "")
        self._sagemaker_call(
            "CreateModel",
            **requests.model(
                name=name, image=image, model_data_url=model.artifact or "", role_arn=role, tag_values=tag_values
            ),
        )
        try:
            self._sagemaker_call(
                "CreateTransformJob",
                **requests.transform_job(
                    name=name,
                    model_name=name,
                    input_uri=f"{root}/input/",
                    output_uri=f"{root}/output",
                    content_type=content_type,
                    instance_type=options.transform_instance_type,
                    tag_values=tag_values,
                ),
            )
            answer = poll(
                lambda: self._sagemaker_call("DescribeTransformJob", TransformJobName=name),
                lambda a: a["TransformJobStatus"] in ("Completed", "Failed", "Stopped"),
                self.poll_schedule(),
                timeout=timeout,
                what=f"transform job {name}",
                hint=f"it keeps running: aws sagemaker describe-transform-job --transform-job-name {name}",
            )
        finally:
            try:
                self._sagemaker_call("DeleteModel", ModelName=name)
            except MCVError as exc:
                log.warning("could not delete the transform model %s: %s", name, exc)
        if answer["TransformJobStatus"] != "Completed":
            reason = answer.get("FailureReason") or answer["TransformJobStatus"]
            raise ServiceError(f"transform job {name} did not complete: {reason}")
        out = []
        bucket, _, prefix = f"{root}/output".removeprefix("s3://").partition("/")
        for path, key in keys.items():
            try:
                body = self.aws.s3.get_object(Bucket=bucket, Key=f"{prefix}/{key}.out")["Body"].read()
            except Exception as exc:
                raise ServiceError(f"transform job {name} wrote no output for {path} ({exc})") from exc
            raw = _decode(body, name)
            detection = model.task == "detection"
            out.append(
                Prediction(
                    provider=self.name,
                    model_id=model.id,
                    task=model.task or "classification",  # type: ignore[arg-type]
                    labels=[] if detection else self._labels(raw, model, params, name),
                    detections=self._detections(raw, model, params, name) if detection else [],
                    latency_ms=0.0,
                    image=str(path),
                    raw=raw,
                )
            )
        return out

    def _labels(self, raw: dict[str, Any], model: ModelRecord, params: PredictParams, endpoint_id: str) -> list[Any]:
        from multicloud_cv.predictions import labels_from_scores

        scores = raw.get("prediction")
        if not isinstance(scores, list) or not all(isinstance(s, (int, float)) for s in scores):
            raise ServiceError(f"endpoint {endpoint_id} answered without a list of class probabilities: {raw!r:.200}")
        try:
            return labels_from_scores(
                scores, _classes(model, len(scores)), model.task or "classification", params.top_k, params.threshold
            )
        except ValueError as exc:
            raise ServiceError(f"endpoint {endpoint_id}: {exc}") from exc

    def _detections(
        self, raw: dict[str, Any], model: ModelRecord, params: PredictParams, endpoint_id: str
    ) -> list[Any]:
        from multicloud_cv.predictions import detections_from_boxes

        rows = raw.get("prediction")
        if not isinstance(rows, list):
            raise ServiceError(f"endpoint {endpoint_id} answered without detection rows: {raw!r:.200}")
        try:
            parsed = [
                (int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                for r in rows
                if int(r[0]) >= 0
            ]
            return detections_from_boxes(parsed, _classes(model, None), params.top_k, params.threshold)
        except (ValueError, TypeError, IndexError) as exc:
            raise ServiceError(
                f"endpoint {endpoint_id}: rows are not [class, score, xmin, ymin, xmax, ymax]: {exc}"
            ) from exc


def _classes(model: ModelRecord, count: int | None) -> list[str]:
    if model.labels:
        return list(model.labels)
    return [str(i) for i in range(count or 0)]


def _decode(body: bytes, endpoint_id: str) -> dict[str, Any]:
    try:
        text = body.decode("utf-8").strip()
        document = json.loads(text.splitlines()[0] if text.startswith("{") and "\n" in text else text)
    except (UnicodeDecodeError, json.JSONDecodeError, IndexError) as exc:
        raise ServiceError(f"endpoint {endpoint_id} answered something that is not JSON: {body[:120]!r}") from exc
    if not isinstance(document, dict):
        raise ServiceError(f"endpoint {endpoint_id} answered JSON that is not an object: {document!r:.200}")
    return document


def _content_type(image: bytes) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            kind = opened.format
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidImage(f"not a readable image: {exc}") from exc
    if kind == "JPEG":
        return "image/jpeg"
    if kind == "PNG":
        return "image/png"
    raise InvalidImage(f"the built-in algorithms take JPEG or PNG images, not {kind}; convert the image first")


__all__ = ["CAPABILITIES", "SageMakerDeployer", "SageMakerPredictor", "SageMakerTrainer"]
