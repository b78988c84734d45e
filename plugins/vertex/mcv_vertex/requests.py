"""The Vertex AI requests of a training, a deployment and a batch prediction, built once with the SDK's own types.

Every function returns a proto-plus message of ``google.cloud.aiplatform_v1`` built from keyword fields, so a
misspelt or mistyped field fails here (``ValueError`` / ``TypeError`` from proto-plus), in the plan as in the
submission: the plan (``mcv plan train -p vertex``) shows exactly what :mod:`mcv_vertex.provider` sends.
:func:`as_params` turns a message into the JSON the REST API carries (camelCase, enums by name).

Schema URIs are the public ones the SDK uses (``aiplatform/schema.py``; cloud-apis.md 3.1): the image dataset
metadata schema, the three image import schemas (:func:`multicloud_cv.datasets.vertex_jsonl.import_schema_uri`)
and the AutoML image classification / object detection training definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mcv_vertex.automl import AutoMLSettings
from mcv_vertex.machines import Pool

SCHEMA_ROOT = "gs://google-cloud-aiplatform/schema"
IMAGE_METADATA_SCHEMA = f"{SCHEMA_ROOT}/dataset/metadata/image_1.0.0.yaml"
TRAINING_DEFINITIONS = {
    "classification": f"{SCHEMA_ROOT}/trainingjob/definition/automl_image_classification_1.0.0.yaml",
    "object_detection": f"{SCHEMA_ROOT}/trainingjob/definition/automl_image_object_detection_1.0.0.yaml",
}
TASK_MODULE = "mcv_vertex.task"
ML_USE = "labels.aiplatform.googleapis.com/ml_use"


def _types() -> Any:
    from google.cloud import aiplatform_v1

    return aiplatform_v1


def label_values(values: Mapping[str, str]) -> dict[str, str]:
    """Resource labels as Vertex takes them: lower case, ``-``/``_`` only, at most 63 characters."""
    out = {}
    for key, value in values.items():
        clean = "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]
        out[key.replace(":", "-").lower()] = clean
    return out


def custom_job(
    display_name: str,
    pools: Sequence[Pool],
    executor_image: str,
    package_uri: str,
    args: Sequence[str],
    base_output_dir: str,
    service_account: str | None,
    labels: Mapping[str, str],
) -> Any:
    """A CustomJob whose every pool runs :data:`TASK_MODULE` from our package in a prebuilt training container."""
    types = _types()
    specs = [
        types.WorkerPoolSpec(
            machine_spec=types.MachineSpec(**pool.machine_spec()),
            replica_count=pool.replica_count,
            python_package_spec=types.PythonPackageSpec(
                executor_image_uri=executor_image,
                package_uris=[package_uri],
                python_module=TASK_MODULE,
                args=list(args),
            ),
            disk_spec=types.DiskSpec(boot_disk_type="pd-ssd", boot_disk_size_gb=100),
        )
        for pool in pools
    ]
    job_spec: dict[str, Any] = {
        "worker_pool_specs": specs,
        "base_output_directory": types.GcsDestination(output_uri_prefix=base_output_dir),
    }
    if service_account:
        job_spec["service_account"] = service_account
    return types.CustomJob(
        display_name=display_name, job_spec=types.CustomJobSpec(**job_spec), labels=label_values(labels)
    )


def image_dataset(display_name: str, labels: Mapping[str, str]) -> Any:
    """An image Dataset (metadata schema ``image_1.0.0``)."""
    types = _types()
    return types.Dataset(
        display_name=display_name, metadata_schema_uri=IMAGE_METADATA_SCHEMA, labels=label_values(labels)
    )


def import_config(gcs_uri: str, task: str) -> Any:
    """ImportDataConfig for our staged JSON Lines with the task's import schema."""
    from multicloud_cv.datasets.vertex_jsonl import import_schema_uri

    types = _types()
    return types.ImportDataConfig(gcs_source=types.GcsSource(uris=[gcs_uri]), import_schema_uri=import_schema_uri(task))


def training_pipeline(display_name: str, dataset_id: str, settings: AutoMLSettings, labels: Mapping[str, str]) -> Any:
    """An AutoML image TrainingPipeline that keeps our split through the ml_use labels (filter split)."""
    from google.protobuf import json_format, struct_pb2

    types = _types()
    inputs: dict[str, Any] = {
        "modelType": settings.model_type,
        "budgetMilliNodeHours": str(settings.budget_milli_node_hours),
        "disableEarlyStopping": False,
    }
    if settings.prediction_type == "classification":
        inputs["multiLabel"] = settings.multi_label
    value = json_format.ParseDict(inputs, struct_pb2.Value())
    return types.TrainingPipeline(
        display_name=display_name,
        training_task_definition=TRAINING_DEFINITIONS[settings.prediction_type],
        training_task_inputs=value,
        input_data_config=types.InputDataConfig(
            dataset_id=dataset_id,
            filter_split=types.FilterSplit(
                training_filter=f"{ML_USE}=training",
                validation_filter=f"{ML_USE}=validation",
                test_filter=f"{ML_USE}=test",
            ),
        ),
        model_to_upload=types.Model(display_name=display_name, labels=label_values(labels)),
        labels=label_values(labels),
    )


def uploaded_model(display_name: str, artifact_uri: str, serving_image: str, labels: Mapping[str, str]) -> Any:
    """A Model of the custom route: our exported folder served by our serving container."""
    types = _types()
    return types.Model(
        display_name=display_name,
        artifact_uri=artifact_uri,
        container_spec=types.ModelContainerSpec(
            image_uri=serving_image,
            predict_route="/predict",
            health_route="/health",
            ports=[types.Port(container_port=8080)],
        ),
        labels=label_values(labels),
    )


def endpoint(display_name: str, labels: Mapping[str, str]) -> Any:
    """An Endpoint."""
    return _types().Endpoint(display_name=display_name, labels=label_values(labels))


def deployed_model(
    model_name: str, display_name: str, machine_type: str, accelerator: str | None, low: int, high: int
) -> Any:
    """A DeployedModel on dedicated resources."""
    types = _types()
    spec: dict[str, Any] = {"machine_type": machine_type}
    if accelerator:
        spec["accelerator_type"] = accelerator
        spec["accelerator_count"] = 1
    return types.DeployedModel(
        model=model_name,
        display_name=display_name,
        dedicated_resources=types.DedicatedResources(
            machine_spec=types.MachineSpec(**spec), min_replica_count=low, max_replica_count=high
        ),
    )


def batch_prediction_job(
    display_name: str, model_name: str, instances_uri: str, output_prefix: str, machine_type: str
) -> Any:
    """A BatchPredictionJob over JSON Lines of ``{"content": "gs://...", "mimeType": ...}`` instances."""
    types = _types()
    return types.BatchPredictionJob(
        display_name=display_name,
        model=model_name,
        input_config=types.BatchPredictionJob.InputConfig(
            instances_format="jsonl", gcs_source=types.GcsSource(uris=[instances_uri])
        ),
        output_config=types.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl", gcs_destination=types.GcsDestination(output_uri_prefix=output_prefix)
        ),
        dedicated_resources=types.BatchDedicatedResources(
            machine_spec=types.MachineSpec(machine_type=machine_type), starting_replica_count=1, max_replica_count=1
        ),
    )


def as_params(message: Any) -> dict[str, Any]:
    """The message as the REST API's JSON (camelCase names, enums by name, defaults left out)."""
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(type(message).pb(message)))
