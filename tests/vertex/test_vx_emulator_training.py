"""The Vertex AI emulator's real work through the real GAPIC v1 clients (REST): AutoML image training ->
model -> endpoint -> deploy -> predict (classification and detection), batch prediction output files, the
payload limit and delete rules on a deployed model, and a CustomJob running ``mcv_vertex.task`` from the package
-> UploadModel -> deploy -> predict through :func:`mcv_vertex.serving.predict_instances`.

Models are tiny (32-64 px images, 2 epochs / 6 detector steps), so each training takes seconds.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import re
import time
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
BUCKET = "vx-train"
PACE = 0.02
IMAGE_METADATA = "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
DEFINITIONS = "gs://google-cloud-aiplatform/schema/trainingjob/definition/"
LABELS = ("circle", "square")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexEmulator]:
    with vertex_emulator(pace=PACE, state_dir=tmp_path_factory.mktemp("vx-train-state"), bucket=BUCKET) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(emu: VertexEmulator) -> SimpleNamespace:
    kwargs: dict[str, Any] = {
        "transport": "rest",
        "client_options": {"api_endpoint": emu.endpoint},
        "credentials": AnonymousCredentials(),
    }
    return SimpleNamespace(
        job=v1.JobServiceClient(**kwargs),
        pipeline=v1.PipelineServiceClient(**kwargs),
        dataset=v1.DatasetServiceClient(**kwargs),
        model=v1.ModelServiceClient(**kwargs),
        endpoint=v1.EndpointServiceClient(**kwargs),
        prediction=v1.PredictionServiceClient(**kwargs),
    )


@contextlib.contextmanager
def refused(status: str, match: str | None = None) -> Iterator[Any]:
    with pytest.raises(gexc.GoogleAPICallError) as caught:
        yield caught
    assert caught.value.response.json()["error"]["status"] == status, caught.value
    if match is not None:
        assert re.search(match, caught.value.message), caught.value.message


def bucket_of(emu: VertexEmulator) -> Any:
    from google.cloud import storage

    client = storage.Client(
        project="mcv-emulated", credentials=AnonymousCredentials(), client_options={"api_endpoint": emu.gcs_endpoint}
    )
    return client.bucket(BUCKET)


def png(shape: str, seed: int, size: int = 32) -> bytes:
    from multicloud_cv.testing.data import draw

    buffer = io.BytesIO()
    draw(shape, size, random.Random(seed)).save(buffer, "PNG")
    return buffer.getvalue()


def stage_classification(emu: VertexEmulator, prefix: str, per_label: int = 12) -> str:
    bucket = bucket_of(emu)
    lines = []
    for label in LABELS:
        for i in range(per_label):
            key = f"{prefix}/images/{label}_{i}.png"
            bucket.blob(key).upload_from_string(png(label, i))
            use = "training" if i < per_label - 3 else "validation"
            lines.append(
                {
                    "imageGcsUri": f"gs://{BUCKET}/{key}",
                    "classificationAnnotation": {"displayName": label},
                    "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": use},
                }
            )
    bucket.blob(f"{prefix}/dataset.jsonl").upload_from_string("".join(json.dumps(x) + "\n" for x in lines))
    bucket.blob(f"{prefix}/classes.txt").upload_from_string("".join(f"{label}\n" for label in LABELS))
    return f"gs://{BUCKET}/{prefix}/dataset.jsonl"


def import_dataset(api: SimpleNamespace, jsonl: str, task: str) -> str:
    dataset = api.dataset.create_dataset(
        parent=PARENT, dataset=v1.Dataset(display_name=task, metadata_schema_uri=IMAGE_METADATA)
    ).result(timeout=30)
    config = v1.ImportDataConfig(gcs_source=v1.GcsSource(uris=[jsonl]), import_schema_uri=IMPORT_SCHEMA_URIS[task])
    api.dataset.import_data(name=dataset.name, import_configs=[config]).result(timeout=60)
    return str(dataset.name)


def wait(get: Any, name: str, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        resource = get(name=name)
        if resource.state.name.split("_STATE_")[-1] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return resource
        assert time.monotonic() < deadline, f"{name} still {resource.state.name}"
        time.sleep(0.05)


def deploy(api: SimpleNamespace, model: str, dedicated: bool = False) -> tuple[str, str]:
    endpoint = api.endpoint.create_endpoint(parent=PARENT, endpoint=v1.Endpoint(display_name="ep")).result(timeout=30)
    deployed = v1.DeployedModel(model=model, display_name="dm")
    if dedicated:
        deployed.dedicated_resources = {"machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}
    else:
        deployed.automatic_resources = {"min_replica_count": 1, "max_replica_count": 1}
    response = api.endpoint.deploy_model(
        endpoint=endpoint.name, deployed_model=deployed, traffic_split={"0": 100}
    ).result(timeout=60)
    return str(endpoint.name), str(response.deployed_model.id)


def instance(data: bytes) -> dict[str, str]:
    return {"content": base64.b64encode(data).decode(), "mimeType": "image/png"}


def as_dicts(response: Any) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(dict(p), default=list)) for p in response.predictions]


# ----------------------------------------------------------------------------------------------- AutoML


@pytest.fixture(scope="module")
def automl_model(emu: VertexEmulator, api: SimpleNamespace) -> str:
    dataset = import_dataset(api, stage_classification(emu, "automl-cls"), "classification")
    pipeline = v1.TrainingPipeline(
        display_name="automl-cls",
        training_task_definition=DEFINITIONS + "automl_image_classification_1.0.0.yaml",
        training_task_inputs={"modelType": "CLOUD", "budgetMilliNodeHours": 8000, "multiLabel": False},
        input_data_config={
            "dataset_id": dataset.rsplit("/", 1)[-1],
            "filter_split": {
                "training_filter": "labels.aiplatform.googleapis.com/ml_use=training",
                "validation_filter": "labels.aiplatform.googleapis.com/ml_use=validation",
                "test_filter": "labels.aiplatform.googleapis.com/ml_use=test",
            },
        },
        model_to_upload={"display_name": "cls-model"},
    )
    created = api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=pipeline)
    done = wait(api.pipeline.get_training_pipeline, created.name)
    assert done.state == v1.PipelineState.PIPELINE_STATE_SUCCEEDED, done.error
    assert done.model_to_upload.name.startswith(PARENT + "/models/")
    return str(done.model_to_upload.name)


def test_automl_classification_deploy_predict(emu: VertexEmulator, api: SimpleNamespace, automl_model: str) -> None:
    model = api.model.get_model(name=automl_model)
    assert model.display_name == "cls-model" and model.training_pipeline
    endpoint, deployed_id = deploy(api, automl_model)
    got = api.endpoint.get_endpoint(name=endpoint)
    assert [d.id for d in got.deployed_models] == [deployed_id] and dict(got.traffic_split) == {deployed_id: 100}
    response = api.prediction.predict(
        endpoint=endpoint, instances=[instance(png("circle", 100)), instance(png("square", 101))]
    )
    assert response.deployed_model_id == deployed_id and response.model == automl_model
    assert response.model_version_id == "1"
    predictions = as_dicts(response)
    assert len(predictions) == 2
    for prediction in predictions:
        assert set(prediction) == {"ids", "displayNames", "confidences"}
        assert sorted(prediction["displayNames"]) == sorted(LABELS)
        assert prediction["confidences"] == sorted(prediction["confidences"], reverse=True)
        assert [LABELS[int(i)] for i in prediction["ids"]] == prediction["displayNames"]
    one = as_dicts(
        api.prediction.predict(
            endpoint=endpoint, instances=[instance(png("circle", 3))], parameters={"maxPredictions": 1}
        )
    )
    assert len(one[0]["ids"]) == 1
    none = as_dicts(
        api.prediction.predict(
            endpoint=endpoint, instances=[instance(png("circle", 3))], parameters={"confidenceThreshold": 1.01}
        )
    )
    assert none[0]["ids"] == []
    with refused("INVALID_ARGUMENT", match="Request payload size exceeds the limit: 1572864 bytes."):
        api.prediction.predict(endpoint=endpoint, instances=[{"content": "A" * 1_600_000, "mimeType": "image/png"}])
    with refused("INVALID_ARGUMENT", match="not valid base64"):
        api.prediction.predict(endpoint=endpoint, instances=[{"content": "***"}])
    with refused("FAILED_PRECONDITION", match="is deployed or being deployed at the following Endpoint"):
        api.model.delete_model(name=automl_model)
    with refused("FAILED_PRECONDITION", match="has deployed models"):
        api.endpoint.delete_endpoint(name=endpoint)
    api.endpoint.undeploy_model(endpoint=endpoint, deployed_model_id=deployed_id).result(timeout=30)
    assert not api.endpoint.get_endpoint(name=endpoint).deployed_models
    api.endpoint.delete_endpoint(name=endpoint).result(timeout=30)
    assert endpoint not in emu.resources("endpoints")


def test_batch_prediction_writes_results(emu: VertexEmulator, api: SimpleNamespace, automl_model: str) -> None:
    bucket = bucket_of(emu)
    lines = []
    for i, label in enumerate(("circle", "square", "circle")):
        bucket.blob(f"batch/in/{i}.png").upload_from_string(png(label, 200 + i))
        lines.append({"content": f"gs://{BUCKET}/batch/in/{i}.png", "mimeType": "image/png"})
    lines.append({"content": f"gs://{BUCKET}/batch/in/missing.png", "mimeType": "image/png"})
    bucket.blob("batch/instances.jsonl").upload_from_string("".join(json.dumps(x) + "\n" for x in lines))
    job = v1.BatchPredictionJob(
        display_name="batch",
        model=automl_model,
        input_config={"instances_format": "jsonl", "gcs_source": {"uris": [f"gs://{BUCKET}/batch/instances.jsonl"]}},
        output_config={
            "predictions_format": "jsonl",
            "gcs_destination": {"output_uri_prefix": f"gs://{BUCKET}/batch/out"},
        },
        model_parameters={"maxPredictions": 1},
    )
    created = api.job.create_batch_prediction_job(parent=PARENT, batch_prediction_job=job)
    done = wait(api.job.get_batch_prediction_job, created.name)
    assert done.state == v1.JobState.JOB_STATE_SUCCEEDED, done.error
    folder = done.output_info.gcs_output_directory
    assert re.fullmatch(
        rf"gs://{BUCKET}/batch/out/prediction-cls-model-\d{{4}}_\d\d_\d\dT\d\d_\d\d_\d\d_\d{{3}}Z", folder
    )
    key = folder[len(f"gs://{BUCKET}/") :]
    results = [
        json.loads(x) for x in bucket.blob(f"{key}/prediction.results-00000-of-00001").download_as_text().splitlines()
    ]
    assert len(results) == 3 and done.completion_stats.successful_count == 3
    assert done.completion_stats.failed_count == 1
    assert results[0]["instance"]["content"] == lines[0]["content"] and len(results[0]["prediction"]["ids"]) == 1
    errors = bucket.blob(f"{key}/prediction.errors_stats-00000-of-00001").download_as_text()
    assert "missing.png" in errors
    api.job.delete_batch_prediction_job(name=created.name).result(timeout=30)
    assert created.name not in emu.resources("batchPredictionJobs")


def test_automl_detection_predicts_boxes(emu: VertexEmulator, api: SimpleNamespace, tmp_path: Path) -> None:
    from multicloud_cv.datasets.vertex_jsonl import write_vertex_jsonl
    from multicloud_cv.testing.datasets import make_detection_dataset

    data = make_detection_dataset(tmp_path / "det", per_split={"train": 24, "validation": 4}, size=(64, 48))
    bucket = bucket_of(emu)
    for image in data.images:
        bucket.blob(f"det/{image.path}").upload_from_filename(str(data.absolute(image)))
    out = write_vertex_jsonl(data, tmp_path / "jsonl", image_ref=lambda image: f"gs://{BUCKET}/det/{image.path}")
    bucket.blob("det/dataset.jsonl").upload_from_filename(str(out))
    dataset = import_dataset(api, f"gs://{BUCKET}/det/dataset.jsonl", "detection")
    pipeline = v1.TrainingPipeline(
        display_name="automl-det",
        training_task_definition=DEFINITIONS + "automl_image_object_detection_1.0.0.yaml",
        training_task_inputs={"modelType": "CLOUD_HIGH_ACCURACY_1", "budgetMilliNodeHours": 20000},
        input_data_config={
            "dataset_id": dataset.rsplit("/", 1)[-1],
            "fraction_split": {"training_fraction": 0.9, "validation_fraction": 0.1},
        },
        model_to_upload={"display_name": "det-model"},
    )
    created = api.pipeline.create_training_pipeline(parent=PARENT, training_pipeline=pipeline)
    done = wait(api.pipeline.get_training_pipeline, created.name)
    assert done.state == v1.PipelineState.PIPELINE_STATE_SUCCEEDED, done.error
    endpoint, _ = deploy(api, done.model_to_upload.name)
    (prediction,) = as_dicts(
        api.prediction.predict(
            endpoint=endpoint,
            instances=[instance(data.absolute(data.images[1]).read_bytes())],
            parameters={"confidenceThreshold": 0.0, "maxPredictions": 5},
        )
    )
    assert set(prediction) == {"ids", "displayNames", "confidences", "bboxes"}
    assert 0 < len(prediction["bboxes"]) <= 5 and len(prediction["ids"]) == len(prediction["bboxes"])
    for x_min, x_max, y_min, y_max in prediction["bboxes"]:
        assert 0 <= x_min <= x_max <= 1 and 0 <= y_min <= y_max <= 1
    assert set(prediction["displayNames"]) <= set(data.classes)


# ---------------------------------------------------------------------------------------------- custom jobs


@pytest.fixture(scope="module")
def package(emu: VertexEmulator, tmp_path_factory: pytest.TempPathFactory) -> str:
    from mcv_vertex.package import build_package

    tarball = build_package(tmp_path_factory.mktemp("pkg"))
    bucket_of(emu).blob(f"code/{tarball.name}").upload_from_filename(str(tarball))
    return f"gs://{BUCKET}/code/{tarball.name}"


def custom_job(
    name: str, package: str, args: list[str], base: str, replicas: int = 1, env: dict[str, str] | None = None
) -> v1.CustomJob:
    pool = {
        "machine_spec": {
            "machine_type": "n1-standard-4",
            "accelerator_type": "NVIDIA_TESLA_T4",
            "accelerator_count": 1,
        },
        "replica_count": 1,
        "python_package_spec": {
            "executor_image_uri": "us-docker.pkg.dev/vertex-ai/training/pytorch-gpu.2-4.py310:latest",
            "package_uris": [package],
            "python_module": "mcv_vertex.task",
            "args": args,
            "env": [{"name": key, "value": value} for key, value in (env or {}).items()],
        },
    }
    pools = [pool] + ([{**pool, "replica_count": replicas - 1}] if replicas > 1 else [])
    return v1.CustomJob(
        display_name=name, job_spec={"worker_pool_specs": pools, "base_output_directory": {"output_uri_prefix": base}}
    )


def test_custom_job_trains_uploads_deploys_predicts(emu: VertexEmulator, api: SimpleNamespace, package: str) -> None:
    jsonl = stage_classification(emu, "custom-cls", per_label=8)
    base = f"gs://{BUCKET}/jobs/custom-1"
    created = api.job.create_custom_job(
        parent=PARENT,
        custom_job=custom_job("custom", package, ["--dataset", jsonl, "--task", "classification"], base, replicas=2),
    )
    done = wait(api.job.get_custom_job, created.name)
    assert done.state == v1.JobState.JOB_STATE_SUCCEEDED, done.error
    names = {blob.name for blob in bucket_of(emu).list_blobs(prefix="jobs/custom-1/model/")}
    assert "jobs/custom-1/model/model.onnx" in names
    uploaded = api.model.upload_model(
        parent=PARENT,
        model=v1.Model(
            display_name="custom-model",
            artifact_uri=f"{base}/model/",
            container_spec={"image_uri": "us-central1-docker.pkg.dev/p/r/mcv-serving:1", "predict_route": "/predict"},
        ),
    ).result(timeout=30)
    endpoint, deployed_id = deploy(api, uploaded.model, dedicated=True)
    response = api.prediction.predict(
        endpoint=endpoint, instances=[instance(png("square", 300))], parameters={"maxPredictions": 2}
    )
    (prediction,) = as_dicts(response)
    assert response.deployed_model_id == deployed_id
    assert sorted(prediction["displayNames"]) == sorted(LABELS) and len(prediction["ids"]) == 2
    with refused("INVALID_ARGUMENT"):
        api.prediction.predict(endpoint=endpoint, instances=[{"content": base64.b64encode(b"not an image").decode()}])
    api.endpoint.undeploy_model(endpoint=endpoint, deployed_model_id=deployed_id).result(timeout=30)
    api.model.delete_model(name=uploaded.model).result(timeout=30)


def test_custom_job_task_failure_reports_last_stderr_line(api: SimpleNamespace, package: str) -> None:
    base = f"gs://{BUCKET}/jobs/custom-fail"
    args = ["--dataset", f"gs://{BUCKET}/nowhere/dataset.jsonl", "--task", "classification"]
    created = api.job.create_custom_job(parent=PARENT, custom_job=custom_job("fails", package, args, base))
    done = wait(api.job.get_custom_job, created.name)
    assert done.state == v1.JobState.JOB_STATE_FAILED
    assert "exited with a non-zero status of 1" in done.error.message
    assert "mcv_vertex.task failed:" in done.error.message


def test_cancel_kills_a_running_task(emu: VertexEmulator, api: SimpleNamespace, package: str) -> None:
    jsonl = stage_classification(emu, "custom-cancel", per_label=4)
    # a task that trains until it is killed: forked from the emulator's warm parent, a short one ends in under 1 s
    args = ["--dataset", jsonl, "--task", "classification", "--epochs", "100000"]
    job = custom_job("cancel", package, args, f"gs://{BUCKET}/jobs/c", env={"MCV_TASK_MAX_EPOCHS": "100000"})
    created = api.job.create_custom_job(parent=PARENT, custom_job=job)
    deadline = time.monotonic() + 30
    while api.job.get_custom_job(name=created.name).state != v1.JobState.JOB_STATE_RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    api.job.cancel_custom_job(name=created.name)
    done = wait(api.job.get_custom_job, created.name, timeout=30)
    assert done.state == v1.JobState.JOB_STATE_CANCELLED
    assert not list(bucket_of(emu).list_blobs(prefix="jobs/c/model/"))
