"""The emulated SageMaker control plane and runtime: one method per operation, behind the service's checks.

:meth:`ControlPlane.handle` serves one JSON 1.1 call (``X-Amz-Target: SageMaker.<Operation>``):
record the call, apply pending faults (:mod:`.faults`), decode and validate the body against botocore's
model (:mod:`.protocol`), run ``_op_<Operation>``, apply after-effect faults, check the answer against the
output shape, encode it. :meth:`ControlPlane.invoke` serves ``POST /endpoints/{name}/invocations``.

Operations: CreateTrainingJob, DescribeTrainingJob, StopTrainingJob, ListTrainingJobs, CreateModel,
DescribeModel, DeleteModel, ListModels, CreateEndpointConfig, DescribeEndpointConfig, DeleteEndpointConfig,
ListEndpointConfigs, CreateEndpoint, DescribeEndpoint, DeleteEndpoint, ListEndpoints, CreateTransformJob,
DescribeTransformJob, StopTransformJob, ListTransformJobs, AddTags, ListTags, DeleteTags; and the Service
Quotas operations of :mod:`.quotas` (``X-Amz-Target: ServiceQuotasV20190624.*``). Any other operation of the
models answers HTTP 501 ``NotImplementedException`` naming the implemented ones; a name the models do not
know answers ``UnknownOperationException``.

The service's texts used here (cloud-apis.md 5.2, pains.md S1, S6, S8): "Training job names must be unique
within an AWS account and region, and a training job with this name already exists (<arn>)" (ResourceInUse;
transform jobs alike); "Cannot create already existing model|endpoint configuration|endpoint "<arn>"."
(ValidationException); "Could not find training job '<arn>'." and "Could not find model|endpoint
configuration|endpoint "<arn>"."; "Could not find model data at <url>."; "Could not assume role <arn>. ...";
"No S3 objects found under S3 URL ..."; the quota text of :func:`.faults.quota_message`; runtime
``ValidationError`` "Endpoint <name> of account <account> not found." (also while the endpoint is not
InService), HTTP 413 "HTTP content length exceeded 6291456 bytes." and ``ModelError`` (HTTP 424) "Received
client error (<status>) from primary with message "<container message>". See <logs url> in account
<account> for more information.".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from mcv_sagemaker.emulator import protocol, quotas
from mcv_sagemaker.emulator.faults import USAGE, FaultBook, quota_message, request_instances
from mcv_sagemaker.emulator.hosting import EndpointRunner, TransformRunner
from mcv_sagemaker.emulator.logs import ENDPOINT_GROUP, TRAINING_GROUP, TRANSFORM_GROUP, LogStream
from mcv_sagemaker.emulator.protocol import ApiError, missing_member, validation_error
from mcv_sagemaker.emulator.rules import algorithm_of_image, create_problems, no_objects_message, source
from mcv_sagemaker.emulator.serving import ModelFailure
from mcv_sagemaker.emulator.store import (
    Endpoint,
    EndpointConfig,
    Model,
    Store,
    TrainingJob,
    TransformJob,
    now,
    page,
)
from mcv_sagemaker.emulator.training import TrainingRunner
from multicloud_cv.emulation.aws import S3, split_uri
from multicloud_cv.emulation.service import Answer, JsonService, Target
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

MAX_PAYLOAD = 6_291_456
"""InvokeEndpoint's body limit in bytes (botocore sagemaker-runtime model, cloud-apis.md 1.4)."""

OPERATIONS = (
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "StopTrainingJob",
    "ListTrainingJobs",
    "CreateModel",
    "DescribeModel",
    "DeleteModel",
    "ListModels",
    "CreateEndpointConfig",
    "DescribeEndpointConfig",
    "DeleteEndpointConfig",
    "ListEndpointConfigs",
    "CreateEndpoint",
    "DescribeEndpoint",
    "DeleteEndpoint",
    "ListEndpoints",
    "CreateTransformJob",
    "DescribeTransformJob",
    "StopTransformJob",
    "ListTransformJobs",
    "AddTags",
    "ListTags",
    "DeleteTags",
)


class ControlPlane(JsonService):
    """The emulated account (see the module docstring). Thread-safe; one per emulator."""

    product = "SageMaker"
    validation_error = "ValidationException"
    internal_error = "InternalFailure"
    faults: FaultBook

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
        self.quotas = quotas.Quotas(region, self.store.account)
        self.logs: dict[str, list[str]] = {}

    # ----------------------------------------------------------------------------------------- plumbing

    def targets(self) -> list[Target]:
        """SageMaker's control plane and the Service Quotas API for its instance quotas."""
        return [
            Target(protocol.TARGET_PREFIX, protocol.CONTROL_SERVICE, self, OPERATIONS),
            Target(quotas.TARGET_PREFIX, quotas.SERVICE, self.quotas, quotas.OPERATIONS),
        ]

    def _stream(self, group: str, stream: str, key: str) -> LogStream:
        lines = self.logs.setdefault(key, [])
        return LogStream(self.s3.client("logs"), group, stream, lines)

    # ------------------------------------------------------------------------------------------ checks

    def _check_role(self, role_arn: str) -> None:
        from botocore.exceptions import ClientError

        message = (
            f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
            "'sagemaker.amazonaws.com' to assume the role."
        )
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = self.s3.client("iam").get_role(RoleName=name)["Role"]
        except ClientError as exc:
            raise validation_error(message) from exc
        if role.get("Arn") != role_arn or "sagemaker.amazonaws.com" not in json.dumps(
            role.get("AssumeRolePolicyDocument", "")
        ):
            raise validation_error(message)

    def _check_objects(self, uri: str, role_arn: str) -> None:
        try:
            bucket, prefix = split_uri(uri)
        except ValueError as exc:
            raise validation_error(f"{uri} is not a valid S3 URI.") from exc
        if not self.s3.bucket_exists(bucket) or self._bucket_region(bucket) != self.region:
            raise validation_error(no_objects_message(uri, self.region, role_arn, bucket))
        if not self.s3.list(bucket, prefix):
            raise validation_error(no_objects_message(uri, self.region, role_arn, bucket))

    def _bucket_region(self, bucket: str) -> str:
        try:
            location = self.s3.client().get_bucket_location(Bucket=bucket).get("LocationConstraint")
        except Exception:  # moto answers for every existing bucket; treat oddities as the job's region
            return self.region
        return str(location or "us-east-1")

    def _in_use(self, instance_type: str, usage: str) -> int:
        total = 0
        if usage == "training job":
            for job in self.store.values("training-job"):
                config = job.request.get("ResourceConfig") or {}
                if not job.terminal and config.get("InstanceType") == instance_type:
                    total += int(config.get("InstanceCount") or 1)
        elif usage == "transform job":
            for job in self.store.values("transform-job"):
                config = job.request["TransformResources"]
                if not job.terminal and config.get("InstanceType") == instance_type:
                    total += int(config.get("InstanceCount") or 1)
        else:
            for endpoint in self.store.values("endpoint"):
                if endpoint.status in ("Failed", "Deleting"):
                    continue
                for variant in endpoint.variants:
                    if variant.get("InstanceType") == instance_type:
                        total += int(variant.get("InitialInstanceCount") or 1)
        return total

    def _check_quota(self, operation: str, instance_type: str, count: int) -> None:
        usage = USAGE[operation]
        limit = self.quotas.limit(instance_type, usage)
        used = self._in_use(instance_type, usage)
        if used + count > limit:
            raise ApiError("ResourceLimitExceeded", quota_message(instance_type, usage, limit, used, count))

    # --------------------------------------------------------------------------------------- training

    def _op_CreateTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["TrainingJobName"])
        if self.store.get("training-job", name) is not None:
            raise self._duplicate_training(name)
        algorithm = create_problems(p, self.region)
        self._check_role(str(p["RoleArn"]))
        for channel in p.get("InputDataConfig") or []:
            data = source(channel)
            self._check_objects(str(data.get("S3Uri", "")), str(p["RoleArn"]))
        try:
            split_uri(str(p["OutputDataConfig"]["S3OutputPath"]))
        except ValueError as exc:
            raise validation_error(f"{p['OutputDataConfig']['S3OutputPath']} is not a valid S3 path.") from exc
        instance_type, count = request_instances("CreateTrainingJob", p)
        with self.store.lock:
            self._check_quota("CreateTrainingJob", instance_type, count)
            if self.store.get("training-job", name) is not None:
                raise self._duplicate_training(name)
            job = TrainingJob(
                name=name,
                arn=self.store.arn("training-job", name),
                request=p,
                algorithm=algorithm,
                created=now(),
                pace=self.pace * self.faults.take_slow("CreateTrainingJob"),
                lock=threading.RLock(),
            )
            job.injected_failure = self.faults.next_training_failure()
            self.store.add("training-job", name, job)
            self.store.set_tags(job.arn, p.get("Tags") or [])
        stream = self._stream(TRAINING_GROUP, f"{name}/algo-1-{int(job.created)}", f"training-job/{name}")
        job.log_lines = stream.lines
        runner = TrainingRunner(job, self.s3, self.state_dir / "training" / name, self.limits, stream, self.closing)
        job.thread = self._start(f"sagemaker-training-{name}", runner.run)
        return {"TrainingJobArn": job.arn}

    def _duplicate_training(self, name: str) -> ApiError:
        return protocol.resource_in_use(
            "Training job names must be unique within an AWS account and region, and a training job with this name "
            f"already exists ({self.store.arn('training-job', name)})"
        )

    def _op_DescribeTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job: TrainingJob = self.store.need("training-job", str(p["TrainingJobName"]))
        return job.describe()

    def _op_StopTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job: TrainingJob = self.store.need("training-job", str(p["TrainingJobName"]))
        with job.lock:
            if job.status != "InProgress":
                raise validation_error(f"The request was rejected because the training job is in status {job.status}.")
            job.request_stop()
        return {}

    def _op_ListTrainingJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        chosen, token = page(
            self.store.values("training-job"),
            p,
            name=lambda j: j.name,
            status=lambda j: j.status,
            created=lambda j: j.created,
            modified=lambda j: j.last_modified,
        )
        out: dict[str, Any] = {"TrainingJobSummaries": [j.summary() for j in chosen]}
        if token:
            out["NextToken"] = token
        return out

    # ------------------------------------------------------------------------------------------ models

    def _op_CreateModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["ModelName"])
        if self.store.get("model", name) is not None:
            raise validation_error(f'Cannot create already existing model "{self.store.arn("model", name)}".')
        if p.get("PrimaryContainer"):
            container, path = dict(p["PrimaryContainer"]), "primaryContainer"
        elif p.get("Containers"):
            container, path = dict(p["Containers"][0]), "containers.1.member"
        else:
            raise missing_member("primaryContainer")
        if not container.get("Image"):
            raise missing_member(f"{path}.image")
        algorithm_of_image(str(container["Image"]), self.region)
        if not p.get("ExecutionRoleArn"):
            raise missing_member("executionRoleArn")
        self._check_role(str(p["ExecutionRoleArn"]))
        url = container.get("ModelDataUrl")
        if url:
            try:
                bucket, key = split_uri(str(url))
            except ValueError as exc:
                raise validation_error(f"Could not find model data at {url}.") from exc
            if not self.s3.exists(bucket, key):
                raise validation_error(f"Could not find model data at {url}.")
        with self.store.lock:
            if self.store.get("model", name) is not None:
                raise validation_error(f'Cannot create already existing model "{self.store.arn("model", name)}".')
            model = Model(name=name, arn=self.store.arn("model", name), request=p, created=now())
            self.store.add("model", name, model)
            self.store.set_tags(model.arn, p.get("Tags") or [])
        return {"ModelArn": model.arn}

    def _op_DescribeModel(self, p: dict[str, Any]) -> dict[str, Any]:
        model: Model = self.store.need("model", str(p["ModelName"]))
        return model.describe()

    def _op_DeleteModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["ModelName"])
        self.store.need("model", name)
        self.store.remove("model", name)
        return {}

    def _op_ListModels(self, p: dict[str, Any]) -> dict[str, Any]:
        chosen, token = page(self.store.values("model"), p, name=lambda m: m.name, created=lambda m: m.created)
        out: dict[str, Any] = {"Models": [m.summary() for m in chosen]}
        if token:
            out["NextToken"] = token
        return out

    # -------------------------------------------------------------------------------- endpoint configs

    def _op_CreateEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["EndpointConfigName"])
        arn = self.store.arn("endpoint-config", name)
        if self.store.get("endpoint-config", name) is not None:
            raise validation_error(f'Cannot create already existing endpoint configuration "{arn}".')
        for index, variant in enumerate(p["ProductionVariants"], start=1):
            where = f"productionVariants.{index}.member"
            if not variant.get("ModelName"):
                raise missing_member(f"{where}.modelName")
            self.store.need("model", str(variant["ModelName"]))
            if not variant.get("ServerlessConfig"):
                if not variant.get("InstanceType"):
                    raise missing_member(f"{where}.instanceType")
                if not variant.get("InitialInstanceCount"):
                    raise missing_member(f"{where}.initialInstanceCount")
        with self.store.lock:
            if self.store.get("endpoint-config", name) is not None:
                raise validation_error(f'Cannot create already existing endpoint configuration "{arn}".')
            config = EndpointConfig(name=name, arn=arn, request=p, created=now())
            self.store.add("endpoint-config", name, config)
            self.store.set_tags(arn, p.get("Tags") or [])
        return {"EndpointConfigArn": arn}

    def _op_DescribeEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        config: EndpointConfig = self.store.need("endpoint-config", str(p["EndpointConfigName"]))
        return config.describe()

    def _op_DeleteEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["EndpointConfigName"])
        self.store.need("endpoint-config", name)
        self.store.remove("endpoint-config", name)
        return {}

    def _op_ListEndpointConfigs(self, p: dict[str, Any]) -> dict[str, Any]:
        chosen, token = page(
            self.store.values("endpoint-config"), p, name=lambda c: c.name, created=lambda c: c.created
        )
        out: dict[str, Any] = {"EndpointConfigs": [c.summary() for c in chosen]}
        if token:
            out["NextToken"] = token
        return out

    # --------------------------------------------------------------------------------------- endpoints

    def _op_CreateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["EndpointName"])
        arn = self.store.arn("endpoint", name)
        if self.store.get("endpoint", name) is not None:
            raise validation_error(f'Cannot create already existing endpoint "{arn}".')
        config: EndpointConfig = self.store.need("endpoint-config", str(p["EndpointConfigName"]))
        variants = [dict(v) for v in config.request["ProductionVariants"]]
        model: Model = self.store.need("model", str(variants[0]["ModelName"]))
        with self.store.lock:
            for variant in variants:
                if variant.get("InstanceType"):
                    self._check_quota(
                        "CreateEndpoint", str(variant["InstanceType"]), int(variant.get("InitialInstanceCount") or 1)
                    )
            if self.store.get("endpoint", name) is not None:
                raise validation_error(f'Cannot create already existing endpoint "{arn}".')
            endpoint = Endpoint(
                name=name,
                arn=arn,
                config_name=config.name,
                variants=variants,
                created=now(),
                pace=self.pace * self.faults.take_slow("CreateEndpoint"),
                lock=threading.RLock(),
            )
            self.store.add("endpoint", name, endpoint)
            self.store.set_tags(arn, p.get("Tags") or [])
        stream = self._stream(
            ENDPOINT_GROUP.format(name=name), f"{endpoint.variant_name}/i-emulator", f"endpoint/{name}"
        )
        endpoint.log_lines = stream.lines
        runner = EndpointRunner(
            endpoint,
            model,
            self.s3,
            self.store,
            self.state_dir / "endpoints" / f"{name}-{int(endpoint.created * 1000)}",
            stream,
            self.closing,
            self.limits.threads,
        )
        endpoint.runner = runner
        endpoint.thread = self._start(f"sagemaker-endpoint-{name}", runner.create)
        return {"EndpointArn": arn}

    def _op_DescribeEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint: Endpoint = self.store.need("endpoint", str(p["EndpointName"]))
        return endpoint.describe()

    def _op_DeleteEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint: Endpoint = self.store.need("endpoint", str(p["EndpointName"]))
        with endpoint.lock:
            if endpoint.status == "Deleting":
                return {}
            endpoint.status = "Deleting"
        runner: EndpointRunner = endpoint.runner
        self._start(f"sagemaker-endpoint-delete-{endpoint.name}", runner.delete)
        return {}

    def _op_ListEndpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        chosen, token = page(
            self.store.values("endpoint"),
            p,
            name=lambda e: e.name,
            status=lambda e: e.status,
            created=lambda e: e.created,
            modified=lambda e: e.last_modified,
        )
        out: dict[str, Any] = {"Endpoints": [e.summary() for e in chosen]}
        if token:
            out["NextToken"] = token
        return out

    # ---------------------------------------------------------------------------------- transform jobs

    def _op_CreateTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["TransformJobName"])
        arn = self.store.arn("transform-job", name)
        duplicate = protocol.resource_in_use(
            "Transform job names must be unique within an AWS account and region, and a transform job with this "
            f"name already exists ({arn})"
        )
        if self.store.get("transform-job", name) is not None:
            raise duplicate
        model: Model = self.store.need("model", str(p["ModelName"]))
        data = p["TransformInput"]["DataSource"].get("S3DataSource")
        if not data:
            raise missing_member("transformInput.dataSource.s3DataSource")
        if data.get("S3DataType") != "S3Prefix":
            raise validation_error(
                f"S3DataType {data.get('S3DataType')} is not supported by the emulator's batch transform; use S3Prefix."
            )
        self._check_objects(str(data["S3Uri"]), str(model.request.get("ExecutionRoleArn", "")))
        try:
            split_uri(str(p["TransformOutput"]["S3OutputPath"]))
        except ValueError as exc:
            raise validation_error(f"{p['TransformOutput']['S3OutputPath']} is not a valid S3 path.") from exc
        instance_type, count = request_instances("CreateTransformJob", p)
        with self.store.lock:
            self._check_quota("CreateTransformJob", instance_type, count)
            if self.store.get("transform-job", name) is not None:
                raise duplicate
            job = TransformJob(
                name=name,
                arn=arn,
                request=p,
                created=now(),
                pace=self.pace * self.faults.take_slow("CreateTransformJob"),
                lock=threading.RLock(),
            )
            self.store.add("transform-job", name, job)
            self.store.set_tags(arn, p.get("Tags") or [])
        stream = self._stream(TRANSFORM_GROUP, f"{name}/i-emulator", f"transform-job/{name}")
        runner = TransformRunner(
            job,
            model,
            self.s3,
            self.region,
            self.state_dir / "transform" / name,
            stream,
            self.closing,
            self.limits.threads,
        )
        job.thread = self._start(f"sagemaker-transform-{name}", runner.run)
        return {"TransformJobArn": arn}

    def _op_DescribeTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job: TransformJob = self.store.need("transform-job", str(p["TransformJobName"]))
        return job.describe()

    def _op_StopTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job: TransformJob = self.store.need("transform-job", str(p["TransformJobName"]))
        with job.lock:
            if job.status == "InProgress":
                job.set_status("Stopping")
                job.stop.set()
        return {}

    def _op_ListTransformJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        chosen, token = page(
            self.store.values("transform-job"),
            p,
            name=lambda j: j.name,
            status=lambda j: j.status,
            created=lambda j: j.created,
            modified=lambda j: j.last_modified,
        )
        out: dict[str, Any] = {"TransformJobSummaries": [j.summary() for j in chosen]}
        if token:
            out["NextToken"] = token
        return out

    # -------------------------------------------------------------------------------------------- tags

    def _tagged(self, arn: str) -> Any:
        item = self.store.find_arn(arn)
        if item is None:
            raise validation_error(f"Resource {arn} does not exist.")
        return item

    def _op_AddTags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        if len({**{t["Key"]: 1 for t in self.store.get_tags(arn)}, **{t["Key"]: 1 for t in p["Tags"]}}) > 50:
            raise validation_error(f"Resource {arn} would have more than 50 tags.")
        self.store.set_tags(arn, p["Tags"])
        return {"Tags": self.store.get_tags(arn)}

    def _op_ListTags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        tags = self.store.get_tags(arn)
        start = int(p["NextToken"]) if str(p.get("NextToken", "")).isdigit() else 0
        size = int(p.get("MaxResults") or 50)
        out: dict[str, Any] = {"Tags": tags[start : start + size]}
        if start + size < len(tags):
            out["NextToken"] = str(start + size)
        return out

    def _op_DeleteTags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = str(p["ResourceArn"])
        self._tagged(arn)
        self.store.delete_tags(arn, [str(k) for k in p["TagKeys"]])
        return {}

    # ----------------------------------------------------------------------------------------- runtime

    def _runtime_error(self, error: ApiError) -> Answer:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        return error.status, headers, json.dumps(error.body()).encode()

    def invoke(self, name: str, body: bytes, content_type: str, accept: str) -> Answer:
        """Serve InvokeEndpoint (``POST /endpoints/{name}/invocations``)."""
        self.record("InvokeEndpoint")
        fault = self.faults.take("InvokeEndpoint", after_effect=False)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.raises:
                return self._runtime_error(self.faults.error(fault, "InvokeEndpoint", {}))
        if len(body) > MAX_PAYLOAD:
            # pains.md S8 (sagemaker-python-sdk #171): botocore shows it as "An error occurred (413)".
            message = f"HTTP content length exceeded {MAX_PAYLOAD} bytes."
            return 413, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
        op = protocol.operation_model("InvokeEndpoint", protocol.RUNTIME_SERVICE)
        params: dict[str, Any] = {"EndpointName": name, "Body": body}
        if content_type:
            params["ContentType"] = content_type
        if accept:
            params["Accept"] = accept
        try:
            protocol.validate_request(op, params)
        except ApiError as error:
            return self._runtime_error(ApiError("ValidationError", error.message))
        endpoint: Endpoint | None = self.store.get("endpoint", name)
        served = None
        if endpoint is not None:
            with endpoint.lock:
                served = endpoint.served if endpoint.status == "InService" else None
        if endpoint is None or served is None:
            return self._runtime_error(
                ApiError("ValidationError", f"Endpoint {name} of account {self.account} not found.")
            )
        try:
            answer, answer_type = served.answer(body, content_type, accept)
        except ModelFailure as failure:
            logs = (
                f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
                f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name}"
            )
            endpoint.log_lines.append(f"{failure.status} {failure.message}")
            return self._runtime_error(
                ApiError(
                    "ModelError",
                    f'Received client error ({failure.status}) from primary with message "{failure.message}". '
                    f"See {logs} in account {self.account} for more information.",
                    status=424,
                    fields={
                        "OriginalStatusCode": failure.status,
                        "OriginalMessage": failure.message,
                        "LogStreamArn": f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/Endpoints/"
                        f"{name}",
                    },
                )
            )
        headers = {"Content-Type": answer_type, "x-Amzn-Invoked-Production-Variant": endpoint.variant_name}
        return 200, headers, answer
