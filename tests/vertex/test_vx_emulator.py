"""The Vertex AI emulator through the real GAPIC v1 clients (REST transport) and plain HTTP for wire details:
long-running operations, job state walks and cancel, request validation, machine and bucket checks, injected faults,
datasets and imports, AutoML refusals, endpoints, deletes, admin routes, life cycle.

No test here trains a model (test_vx_emulator_training.py does), so the module runs in seconds.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1 as v1

from mcv_vertex.emulator import VertexEmulator, vertex_emulator
from multicloud_cv.datasets.vertex_jsonl import IMPORT_SCHEMA_URIS

PARENT = "projects/mcv-emulated/locations/us-central1"
BUCKET = "vx-bucket"
PACE = 0.02
IMAGE_METADATA = "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
CLASSIFICATION_DEFINITION = (
    "gs://google-cloud-aiplatform/schema/trainingjob/definition/automl_image_classification_1.0.0.yaml"
)

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexEmulator]:
    with vertex_emulator(pace=PACE, state_dir=tmp_path_factory.mktemp("vx-state"), bucket=BUCKET) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _clean_faults(emu: VertexEmulator) -> Iterator[None]:
    emu.reset_faults()
    yield
    emu.reset_faults()


@contextlib.contextmanager
def refused(status: str, match: str | None = None) -> Iterator[Any]:
    """The call raises the api_core error of an answer with this canonical ``status`` (the class follows the
    HTTP status: FAILED_PRECONDITION and INVALID_ARGUMENT are both ``BadRequest``)."""
    with pytest.raises(gexc.GoogleAPICallError) as caught:
        yield caught
    assert caught.value.response.json()["error"]["status"] == status, caught.value
    if match is not None:
        assert re.search(match, caught.value.message), caught.value.message


def clients(emu: VertexEmulator) -> SimpleNamespace:
    options: Any = {"api_endpoint": emu.endpoint}
    kwargs: dict[str, Any] = {"transport": "rest", "client_options": options, "credentials": AnonymousCredentials()}
    return SimpleNamespace(
        job=v1.JobServiceClient(**kwargs),
        pipeline=v1.PipelineServiceClient(**kwargs),
        dataset=v1.DatasetServiceClient(**kwargs),
        model=v1.ModelServiceClient(**kwargs),
        endpoint=v1.EndpointServiceClient(**kwargs),
        prediction=v1.PredictionServiceClient(**kwargs),
    )


@pytest.fixture(scope="module")
def api(emu: VertexEmulator) -> SimpleNamespace:
    return clients(emu)


def storage_client(emu: VertexEmulator) -> Any:
    from google.cloud import storage

    return storage.Client(
        project="mcv-emulated", credentials=AnonymousCredentials(), client_options={"api_endpoint": emu.gcs_endpoint}
    )


def put(emu: VertexEmulator, uri: str, data: bytes) -> None:
    bucket, _, key = uri[5:].partition("/")
    storage_client(emu).bucket(bucket).blob(key).upload_from_string(data)


def http(emu: VertexEmulator, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(emu.endpoint + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def png(shape: str, seed: int, size: int = 32) -> bytes:
    import io
    import random

    from multicloud_cv.testing.data import draw

    buffer = io.BytesIO()
    draw(shape, size, random.Random(seed)).save(buffer, "PNG")
    return buffer.getvalue()


def stage_classification(emu: VertexEmulator, prefix: str, per_label: int, missing: str | None = None) -> str:
    """Images of two labels and their import file under gs://BUCKET/prefix; the JSONL URI."""
    lines = []
    for label in ("circle", "square"):
        for i in range(per_label):
            uri = f"gs://{BUCKET}/{prefix}/images/{label}_{i}.png"
            put(emu, uri, png(label, i))
            use = "training" if i < per_label - 2 else "validation"
            line = {"imageGcsUri": uri, "classificationAnnotation": {"displayName": label}}
            lines.append({**line, "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": use}})
    if missing:
        lines.append({"imageGcsUri": missing, "classificationAnnotation": {"displayName": "circle"}})
    jsonl = f"gs://{BUCKET}/{prefix}/dataset.jsonl"
    put(emu, jsonl, "".join(json.dumps(line) + "\n" for line in lines).encode())
    return jsonl


def imported_dataset(api: SimpleNamespace, jsonl: str, schema: str = IMPORT_SCHEMA_URIS["classification"]) -> str:
    dataset = api.dataset.create_dataset(
        parent=PARENT, dataset=v1.Dataset(display_name="ds", metadata_schema_uri=IMAGE_METADATA)
    ).result(timeout=30)
    config = v1.ImportDataConfig(gcs_source=v1.GcsSource(uris=[jsonl]), import_schema_uri=schema)
    api.dataset.import_data(name=dataset.name, import_configs=[config]).result(timeout=60)
    return str(dataset.name)


def package_job(name: str, package: str, args: list[str] | None = None, base: str | None = None, **spec: Any) -> Any:
    machine = {"machine_type": "n1-standard-4", **spec}
    pool = {
        "machine_spec": machine,
        "replica_count": 1,
        "python_package_spec": {
            "executor_image_uri": "us-docker.pkg.dev/vertex-ai/training/pytorch-xla.2-4.py310:latest",
            "package_uris": [package],
            "python_module": "mcv_vertex.task",
            "args": args or [],
        },
    }
    job_spec: dict[str, Any] = {"worker_pool_specs": [pool]}
    if base:
        job_spec["base_output_directory"] = {"output_uri_prefix": base}
    return v1.CustomJob(display_name=name, job_spec=job_spec)


def wait_job(get: Any, name: str, timeout: float = 60.0) -> tuple[Any, list[str]]:
    """Poll until a terminal state; the last resource and the states seen (in order, deduplicated)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        job = get(name=name)
        state = job.state.name.split("_STATE_")[-1]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return job, seen
        assert time.monotonic() < deadline, f"{name} still {state} after {timeout} s"
        time.sleep(PACE / 4)


@pytest.fixture(scope="module")
def package_uri(emu: VertexEmulator) -> str:
    uri = f"gs://{BUCKET}/code/fake_trainer-0.tar.gz"
    put(emu, uri, b"not really a package: the emulator runs the installed mcv_vertex.task")
    return uri


# --------------------------------------------------------------------------------------------- life cycle


def test_start_stop_like_mcv_emulate(tmp_path: Path) -> None:
    emulator = VertexEmulator(port=0, pace=0.5, state_dir=tmp_path / "state", bucket="emulate-bucket")
    emulator.start()
    try:
        assert emulator.endpoint.startswith("http://127.0.0.1:")
        assert emulator.environment() == {"STORAGE_EMULATOR_HOST": emulator.gcs_endpoint}
        settings = emulator.provider_settings()
        assert settings["MCV_VERTEX_API_ENDPOINT"] == emulator.endpoint
        assert settings["MCV_VERTEX_BUCKET"] == "emulate-bucket"
        assert settings["MCV_VERTEX_LOCATION"] == "us-central1" and settings["MCV_VERTEX_POLL_S"] == "0.05"
        status, health = http(emulator, "GET", "/_emulator/health")
        assert status == 200 and health["region"] == "us-central1"
        bucket = storage_client(emulator).get_bucket("emulate-bucket")
        assert bucket.location == "US-CENTRAL1"
        with emulator.patched_environment():
            import os

            assert os.environ["STORAGE_EMULATOR_HOST"] == emulator.gcs_endpoint
        endpoint = emulator.endpoint
    finally:
        emulator.stop()
    assert not emulator.started and (tmp_path / "state").is_dir()
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint + "/_emulator/health", timeout=2)
    with pytest.raises(RuntimeError, match="not started"):
        emulator.endpoint  # noqa: B018


def test_loopback_only() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        VertexEmulator(host="0.0.0.0")


# ----------------------------------------------------------------------------------------- operations


def test_lro_walk_done_false_then_true_under_ui(emu: VertexEmulator, api: SimpleNamespace) -> None:
    before = len(emu.calls("GetOperation"))
    operation = api.dataset.create_dataset(
        parent=PARENT, dataset=v1.Dataset(display_name="lro", metadata_schema_uri=IMAGE_METADATA)
    )
    assert operation.operation.done is False
    assert operation.operation.name.startswith(PARENT + "/operations/")
    dataset = operation.result(timeout=30)
    assert operation.done()
    assert dataset.name.startswith(PARENT + "/datasets/") and dataset.display_name == "lro"
    polls = emu.calls("GetOperation")[before:]
    assert polls and all(call["path"].startswith("/ui/projects/") for call in polls)
    status, answer = http(emu, "GET", "/v1/" + operation.operation.name)
    assert status == 200 and answer["done"] is True
    assert answer["response"]["@type"] == "type.googleapis.com/google.cloud.aiplatform.v1.Dataset"
    assert api.dataset.get_dataset(name=dataset.name).display_name == "lro"
    assert dataset.name in emu.resources("datasets")


def test_unknown_operation_and_resource_are_404(emu: VertexEmulator, api: SimpleNamespace) -> None:
    status, answer = http(emu, "GET", f"/ui/{PARENT}/operations/42")
    assert status == 404 and answer["error"]["status"] == "NOT_FOUND"
    with refused("NOT_FOUND"):
        api.job.get_custom_job(name=f"{PARENT}/customJobs/123")
    with refused("NOT_FOUND"):
        api.endpoint.get_endpoint(name=f"{PARENT}/endpoints/123")


def test_other_project_is_permission_denied(api: SimpleNamespace) -> None:
    with refused("PERMISSION_DENIED", match="other-project"):
        api.job.get_custom_job(name="projects/other-project/locations/us-central1/customJobs/1")


# -------------------------------------------------------------------------------------------- validation


def test_unknown_field_is_invalid_argument(emu: VertexEmulator) -> None:
    status, answer = http(emu, "POST", f"/v1/{PARENT}/customJobs", {"displayName": "x", "bogusField": 1})
    assert status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT" and answer["error"]["code"] == 400
    assert "bogusField" in answer["error"]["message"]
    status, answer = http(emu, "POST", f"/v1/{PARENT}/endpoints", {"displayName": 7, "labels": "nope"})
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"


def test_enums_as_integers_in_names_out(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    pool = {
        "machineSpec": {"machineType": "n1-standard-4", "acceleratorType": 5, "acceleratorCount": 1},
        "replicaCount": "1",
        "containerSpec": {"imageUri": "gcr.io/x/y"},
    }
    query = "?%24alt=json%3Benum-encoding%3Dint"
    body = {"displayName": "ints", "jobSpec": {"workerPoolSpecs": [pool]}}
    status, answer = http(emu, "POST", f"/v1/{PARENT}/customJobs{query}", body)
    assert status == 200, answer
    assert answer["state"] == "JOB_STATE_QUEUED"
    assert answer["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
    job, _ = wait_job(api.job.get_custom_job, answer["name"])
    assert job.job_spec.worker_pool_specs[0].machine_spec.accelerator_type == v1.AcceleratorType.NVIDIA_TESLA_T4


def test_machine_and_accelerator_refusals(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    job = package_job("k80", package_uri, accelerator_type="NVIDIA_TESLA_K80", accelerator_count=1)
    with refused("INVALID_ARGUMENT") as caught:
        api.job.create_custom_job(parent=PARENT, custom_job=job)
    assert caught.value.message.endswith(
        'Accelerator "NVIDIA_TESLA_K80" is not supported for machine type "n1-standard-4". '
        'accelerator "NVIDIA_TESLA_K80" is not offered in us-central1; it is in: none known'
    )
    job = package_job("a2-t4", package_uri, accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1)
    job.job_spec.worker_pool_specs[0].machine_spec.machine_type = "a2-highgpu-1g"
    with refused("INVALID_ARGUMENT", match='Accelerator "NVIDIA_TESLA_T4" is not supported for machine type'):
        api.job.create_custom_job(parent=PARENT, custom_job=job)
    pool = {"machineSpec": {"machineType": "n1-standard-4", "acceleratorType": 99, "acceleratorCount": 1}}
    body = {"displayName": "int-99", "jobSpec": {"workerPoolSpecs": [{**pool, "replicaCount": 1}]}}
    status, answer = http(emu, "POST", f"/v1/{PARENT}/customJobs", body)
    assert status == 400 and "is not an accelerator type of the Vertex AI API" in answer["error"]["message"]
    job = package_job("no-machine", package_uri)
    job.job_spec.worker_pool_specs[0].machine_spec.machine_type = ""
    with refused("INVALID_ARGUMENT", match="machine_type must be set"):
        api.job.create_custom_job(parent=PARENT, custom_job=job)


def test_bucket_location_mismatch(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    emu.create_bucket("vx-multi-region", location="US")
    job = package_job("wrong-region", package_uri, base="gs://vx-multi-region/jobs/1")
    expected = (
        "The Cloud Storage bucket of gs://vx-multi-region is in location us. It must be in the same regional "
        "location as the service location us-central1."
    )
    with refused("FAILED_PRECONDITION") as caught:
        api.job.create_custom_job(parent=PARENT, custom_job=job)
    assert caught.value.message.endswith(expected)
    emu.create_bucket("vx-regional")
    created = api.job.create_custom_job(
        parent=PARENT, custom_job=package_job("ok", package_uri, base="gs://vx-regional/j")
    )
    api.job.cancel_custom_job(name=created.name)


# ------------------------------------------------------------------------------------------- custom jobs


def test_fail_next_job_walks_states_then_fails(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    emu.fail_next_job(message="Resources are insufficient in region: us-central1", code=8)
    created = api.job.create_custom_job(parent=PARENT, custom_job=package_job("stockout", package_uri))
    assert created.state == v1.JobState.JOB_STATE_QUEUED
    job, seen = wait_job(api.job.get_custom_job, created.name)
    assert seen[-1] == "FAILED" and "RUNNING" in seen and seen.index("RUNNING") > 0
    assert [s for s in seen if s in ("QUEUED", "PENDING", "RUNNING")] == sorted(
        [s for s in seen if s in ("QUEUED", "PENDING", "RUNNING")], key=["QUEUED", "PENDING", "RUNNING"].index
    )
    assert job.error.code == 8 and job.error.message == "Resources are insufficient in region: us-central1"
    assert job.start_time and job.end_time and job.end_time >= job.start_time


def test_cancel_walks_cancelling_then_cancelled(api: SimpleNamespace, package_uri: str) -> None:
    created = api.job.create_custom_job(parent=PARENT, custom_job=package_job("to-cancel", package_uri))
    api.job.cancel_custom_job(name=created.name)
    assert api.job.get_custom_job(name=created.name).state == v1.JobState.JOB_STATE_CANCELLING
    job, seen = wait_job(api.job.get_custom_job, created.name)
    assert seen[-2:] == ["CANCELLING", "CANCELLED"] and job.error.code == 1
    with refused("FAILED_PRECONDITION", match="already in state CANCELLED"):
        api.job.cancel_custom_job(name=created.name)


def test_container_jobs_and_missing_packages_fail(api: SimpleNamespace) -> None:
    container = v1.CustomJob(
        display_name="container",
        job_spec={
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "n1-standard-4"},
                    "replica_count": 1,
                    "container_spec": {"image_uri": "x"},
                }
            ]
        },
    )
    first = api.job.create_custom_job(parent=PARENT, custom_job=container)
    missing = api.job.create_custom_job(
        parent=PARENT, custom_job=package_job("missing", f"gs://{BUCKET}/code/nothing-here.tar.gz")
    )
    job, _ = wait_job(api.job.get_custom_job, first.name)
    assert job.state == v1.JobState.JOB_STATE_FAILED and "mcv_vertex.task packages only" in job.error.message
    job, _ = wait_job(api.job.get_custom_job, missing.name)
    assert job.state == v1.JobState.JOB_STATE_FAILED and "nothing-here.tar.gz" in job.error.message


def test_list_and_delete_rules_for_jobs(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    created = api.job.create_custom_job(parent=PARENT, custom_job=package_job("delete-me", package_uri))
    with refused("FAILED_PRECONDITION", match="cancel it"):
        api.job.delete_custom_job(name=created.name)
    names = [job.name for job in api.job.list_custom_jobs(parent=PARENT)]
    assert created.name in names
    api.job.cancel_custom_job(name=created.name)
    wait_job(api.job.get_custom_job, created.name)
    api.job.delete_custom_job(name=created.name).result(timeout=30)
    assert created.name not in emu.resources("customJobs")
    with refused("NOT_FOUND"):
        api.job.get_custom_job(name=created.name)


# ------------------------------------------------------------------------------------------------ faults


def test_injected_429_and_503_are_not_retried_by_the_gapic_client(
    emu: VertexEmulator, api: SimpleNamespace, package_uri: str
) -> None:
    emu.inject(operation="CreateCustomJob", status=429, times=1)
    with refused("RESOURCE_EXHAUSTED"):
        api.job.create_custom_job(parent=PARENT, custom_job=package_job("throttled", package_uri))
    emu.inject(operation="GetEndpoint", status=503, times=1)
    with refused("UNAVAILABLE"):
        api.endpoint.get_endpoint(name=f"{PARENT}/endpoints/1")
    # the GAPIC v1 clients have no default retry: each fault reaches the caller once
    assert [c["status"] for c in emu.calls("CreateCustomJob")][-1] == 429
    assert len([c for c in emu.calls("GetEndpoint") if c["status"] == 503]) == 1


def test_operation_polling_absorbs_a_503(emu: VertexEmulator, api: SimpleNamespace) -> None:
    operation = api.endpoint.create_endpoint(parent=PARENT, endpoint=v1.Endpoint(display_name="poll-retry"))
    emu.inject(operation="GetOperation", status=503, times=1)
    endpoint = operation.result(timeout=30)
    assert endpoint.display_name == "poll-retry"
    assert any(c["status"] == 503 for c in emu.calls("GetOperation"))
    api.endpoint.delete_endpoint(name=endpoint.name).result(timeout=30)


def test_after_effect_fault_creates_then_errors(emu: VertexEmulator, api: SimpleNamespace) -> None:
    before = set(emu.resources("endpoints"))
    emu.inject(operation="CreateEndpoint", error="INTERNAL", after_effect=True)
    with pytest.raises(gexc.InternalServerError):
        api.endpoint.create_endpoint(parent=PARENT, endpoint=v1.Endpoint(display_name="orphan"))
    orphans = set(emu.resources("endpoints")) - before
    assert len(orphans) == 1
    api.endpoint.delete_endpoint(name=orphans.pop()).result(timeout=30)


# ---------------------------------------------------------------------------------------- datasets, AutoML


def test_import_with_a_missing_image_fails_naming_it(emu: VertexEmulator, api: SimpleNamespace) -> None:
    missing = f"gs://{BUCKET}/import-missing/images/gone.png"
    jsonl = stage_classification(emu, "import-missing", per_label=2, missing=missing)
    with pytest.raises(gexc.GoogleAPICallError, match=r"gone\.png"):
        imported_dataset(api, jsonl)


def test_import_checks_schema_and_counts_items(emu: VertexEmulator, api: SimpleNamespace) -> None:
    jsonl = stage_classification(emu, "import-ok", per_label=3)
    name = imported_dataset(api, jsonl)
    assert api.dataset.get_dataset(name=name).data_item_count == 6
    config = v1.ImportDataConfig(gcs_source=v1.GcsSource(uris=[jsonl]), import_schema_uri="gs://x/csv.yaml")
    with refused("INVALID_ARGUMENT", match="not an image import schema"):
        api.dataset.import_data(name=name, import_configs=[config])
    boxes = v1.ImportDataConfig(
        gcs_source=v1.GcsSource(uris=[jsonl]), import_schema_uri=IMPORT_SCHEMA_URIS["detection"]
    )
    with refused("INVALID_ARGUMENT", match="holds classification data"):
        api.dataset.import_data(name=name, import_configs=[boxes])
    api.dataset.delete_dataset(name=name).result(timeout=30)
    assert name not in emu.resources("datasets")


def automl_pipeline(dataset_name: str, **inputs: Any) -> Any:
    return v1.TrainingPipeline(
        display_name="automl",
        training_task_definition=CLASSIFICATION_DEFINITION,
        training_task_inputs={"modelType": "CLOUD", "budgetMilliNodeHours": 8000, **inputs},
        input_data_config={"dataset_id": dataset_name.rsplit("/", 1)[-1]},
        model_to_upload={"display_name": "automl-model"},
    )


def test_too_few_images_per_label_fails_the_pipeline(emu: VertexEmulator, api: SimpleNamespace) -> None:
    name = imported_dataset(api, stage_classification(emu, "too-few", per_label=4))
    created = api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=automl_pipeline(name))
    pipeline, seen = wait_job(api.pipeline.get_training_pipeline, created.name)
    assert seen[-1] == "FAILED" and "RUNNING" in seen
    assert "at least 10 images per label" in pipeline.error.message
    assert "circle (4)" in pipeline.error.message and pipeline.error.code == 9


def test_budget_model_type_and_definition_refusals(emu: VertexEmulator, api: SimpleNamespace) -> None:
    name = imported_dataset(api, stage_classification(emu, "refusals", per_label=2))
    with refused("INVALID_ARGUMENT", match="budget_milli_node_hours 500 is outside 8,000..800,000"):
        api.pipeline.create_training_pipeline(
            parent=PARENT, training_pipeline=automl_pipeline(name, budgetMilliNodeHours=500)
        )
    with refused("INVALID_ARGUMENT", match="model_type YOLO is not valid for classification"):
        api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=automl_pipeline(name, modelType="YOLO"))
    with refused("INVALID_ARGUMENT", match="unknown fields: epochs"):
        api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=automl_pipeline(name, epochs=3))
    custom = automl_pipeline(name)
    custom.training_task_definition = (
        "gs://google-cloud-aiplatform/schema/trainingjob/definition/custom_task_1.0.0.yaml"
    )
    with refused("INVALID_ARGUMENT", match="not emulated"):
        api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=custom)
    with refused("NOT_FOUND"):
        api.pipeline.create_training_pipeline(
            parent=PARENT, training_pipeline=automl_pipeline(f"{PARENT}/datasets/999")
        )


# ----------------------------------------------------------------------------------- models and endpoints


def test_upload_model_validation_and_deploy_rules(emu: VertexEmulator, api: SimpleNamespace) -> None:
    with refused("INVALID_ARGUMENT", match="image_uri"):
        api.model.upload_model(parent=PARENT, model=v1.Model(display_name="m"))
    model = v1.Model(
        display_name="m", artifact_uri=f"gs://{BUCKET}/nothing/", container_spec={"image_uri": "gcr.io/x/serve"}
    )
    with refused("FAILED_PRECONDITION", match="empty or does not exist"):
        api.model.upload_model(parent=PARENT, model=model)
    put(emu, f"gs://{BUCKET}/artifacts/m1/model.onnx", b"not a model")
    model.artifact_uri = f"gs://{BUCKET}/artifacts/m1/"
    uploaded = api.model.upload_model(parent=PARENT, model=model).result(timeout=30)
    assert uploaded.model.startswith(PARENT + "/models/")
    endpoint = api.endpoint.create_endpoint(parent=PARENT, endpoint=v1.Endpoint(display_name="e")).result(timeout=30)
    with refused("INVALID_ARGUMENT", match="does not support automatic resources"):
        api.endpoint.deploy_model(endpoint=endpoint.name, deployed_model=v1.DeployedModel(model=uploaded.model))
    bad = v1.DeployedModel(
        model=uploaded.model,
        dedicated_resources={
            "machine_spec": {
                "machine_type": "a2-highgpu-1g",
                "accelerator_type": "NVIDIA_TESLA_T4",
                "accelerator_count": 1,
            },
            "min_replica_count": 1,
        },
    )
    with refused("INVALID_ARGUMENT", match="is not supported for machine type"):
        api.endpoint.deploy_model(endpoint=endpoint.name, deployed_model=bad)
    with refused("FAILED_PRECONDITION", match="does not have any deployed models"):
        api.prediction.predict(endpoint=endpoint.name, instances=[{"content": "eA=="}])
    api.endpoint.delete_endpoint(name=endpoint.name).result(timeout=30)
    api.model.delete_model(name=uploaded.model).result(timeout=30)
    assert uploaded.model not in emu.resources("models") and endpoint.name not in emu.resources("endpoints")


def test_high_level_sdk_with_rest_transport(emu: VertexEmulator) -> None:
    from google.cloud import aiplatform

    aiplatform.init(
        project="mcv-emulated",
        location="us-central1",
        credentials=AnonymousCredentials(),
        api_endpoint=emu.endpoint,
        api_transport="rest",
    )
    endpoint = aiplatform.Endpoint.create(display_name="high-level")
    assert endpoint.resource_name in emu.resources("endpoints")
    endpoint.delete()
    assert endpoint.resource_name not in emu.resources("endpoints")


# ------------------------------------------------------------------------------------------------ admin


def test_admin_routes(emu: VertexEmulator, api: SimpleNamespace, package_uri: str) -> None:
    status, answer = http(emu, "POST", "/_emulator/faults", {"operation": "GetModel", "status": 503})
    assert status == 200 and answer["pending"] == 1
    with refused("UNAVAILABLE"):
        api.model.get_model(name=f"{PARENT}/models/1")
    status, answer = http(emu, "GET", "/_emulator/calls?operation=GetModel")
    assert status == 200 and answer["calls"][-1]["status"] == 503 and answer["calls"][-1]["method"] == "GET"
    http(emu, "POST", "/_emulator/faults", {"operation": "GetModel", "status": 503})
    status, answer = http(emu, "DELETE", "/_emulator/faults")
    assert status == 200 and answer["pending"] == 0
    status, answer = http(emu, "POST", "/_emulator/fail-next-job", {"message": "quota", "code": 8})
    assert status == 200
    created = api.job.create_custom_job(parent=PARENT, custom_job=package_job("admin-fail", package_uri))
    job, _ = wait_job(api.job.get_custom_job, created.name)
    assert job.error.code == 8 and job.error.message == "quota"
    status, answer = http(emu, "POST", "/_emulator/fail-next-job", {"nothing": 1})
    assert status == 400
    status, answer = http(emu, "GET", "/_emulator/health")
    assert status == 200 and answer["environment"]["STORAGE_EMULATOR_HOST"] == emu.gcs_endpoint
