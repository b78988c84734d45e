"""``python -m mcv_vertex.task`` end to end against an in-process gcp-storage-emulator: the staged Vertex JSON Lines
dataset is downloaded, trained on with the local engine (tiny: 32-64 px, 1 epoch or 2 detector steps) and the
export lands in AIP_MODEL_DIR; failures exit 1 with one last stderr line; non-chief replicas write nothing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from mcv_vertex import task as vtask
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.datasets.vertex_jsonl import write_vertex_jsonl
from multicloud_cv.errors import BadInput, DatasetError
from multicloud_cv.testing.emulators import GcsEmulator, gcs_emulator

BUCKET = "bkt"
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 80, 230)]
CLASSES = ["red", "green", "blue"]
TIMEOUT = 240


def _client(gcs: GcsEmulator) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.endpoint_url}
    )


def _upload_dataset(gcs: GcsEmulator, dataset: Dataset, prefix: str, local: Path) -> str:
    """Write the dataset as Vertex JSON Lines with gs:// image URIs and upload it with its images; returns the URI."""
    base = f"gs://{BUCKET}/{prefix}"
    write_vertex_jsonl(dataset, local, image_ref=lambda image: f"{base}/images/{image.path}")
    bucket = _client(gcs).bucket(BUCKET)
    for image in dataset.images:
        bucket.blob(f"{prefix}/images/{image.path}").upload_from_filename(str(dataset.absolute(image)))
    for name in ("dataset.jsonl", "classes.txt"):
        bucket.blob(f"{prefix}/{name}").upload_from_filename(str(local / name))
    return f"{base}/dataset.jsonl"


def _classification(root: Path, count: int = 12, size: int = 32) -> Dataset:
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    images = []
    for index in range(count):
        label = index % 3
        image = Image.new("RGB", (size, size), tuple(rng.randint(0, 40) for _ in range(3)))
        ImageDraw.Draw(image).rectangle((4, 4, size - 5, size - 5), fill=COLOURS[label])
        name = f"{CLASSES[label]}/{index:03d}.png"
        (root / CLASSES[label]).mkdir(exist_ok=True)
        image.save(root / name)
        split = "validation" if index >= count - 3 else "train"
        images.append(ImageRecord(name, labels=(label,), split=split, width=size, height=size))
    return Dataset(root=root, classes=list(CLASSES), images=images, task="classification")


def _detection(root: Path, count: int = 6, side: int = 64) -> Dataset:
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    records = []
    for index in range(count):
        image = Image.new("RGB", (side, side), tuple(rng.randint(0, 40) for _ in range(3)))
        label = index % 2
        extent = rng.randint(side // 4, side // 2)
        x0, y0 = rng.randint(0, side - extent - 1), rng.randint(0, side - extent - 1)
        box = (x0, y0, x0 + extent, y0 + extent)
        ImageDraw.Draw(image).rectangle(box, fill=COLOURS[label + 1])
        name = f"{index:03d}.png"
        image.save(root / name)
        records.append(
            ImageRecord(
                name,
                boxes=(BoxAnnotation(label, *(float(v) for v in box)),),
                split="train" if index < count - 1 else "test",
                width=side,
                height=side,
            )
        )
    return Dataset(root=root, classes=["box", "ball"], images=records, task="detection")


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("vx-task")
    with gcs_emulator(default_bucket=BUCKET) as emulator:
        classification = _upload_dataset(
            emulator, _classification(root / "cls-src"), "p/datasets/cls", root / "cls-jsonl"
        )
        detection = _upload_dataset(emulator, _detection(root / "det-src"), "p/datasets/det", root / "det-jsonl")
        yield {"emulator": emulator, "classification": classification, "detection": detection}


def _run_task(gcs: dict[str, Any], args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_SPEC", "TF_CONFIG", "CLOUD_ML_JOB_ID")}
    env.update({"STORAGE_EMULATOR_HOST": gcs["emulator"].endpoint_url, "OMP_NUM_THREADS": "1"})
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "mcv_vertex.task", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _objects(gcs: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {blob.name[len(prefix) :]: blob for blob in _client(gcs["emulator"]).list_blobs(BUCKET, prefix=prefix)}


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.slow
def test_classification_trains_and_writes_the_model_to_gcs(gcs: dict[str, Any], tmp_path: Path) -> None:
    prefix = "p/jobs/job-cls/model/"
    result = _run_task(
        gcs,
        ["--dataset", gcs["classification"], "--task", "classification", "--epochs", "4", "--hp", "num_threads=1"],
        {"AIP_MODEL_DIR": f"gs://{BUCKET}/{prefix}", "MCV_TASK_MAX_EPOCHS": "1", "MCV_TASK_MAX_IMAGE_SIZE": "64"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = _objects(gcs, prefix)
    assert {"model.onnx", "labels.json", "metrics.json", "mcv_model.json"} <= set(found)
    assert not [name for name in found if name.endswith(".pt")], "checkpoints must not be uploaded"
    for name, blob in found.items():
        blob.download_to_filename(str(tmp_path / name))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1  # MCV_TASK_MAX_EPOCHS capped the 4 asked
    assert metrics["image_size"] == 32  # native size, under the cap
    info = json.loads((tmp_path / "mcv_model.json").read_text())
    assert info["task"] == "classification" and info["labels"] == CLASSES and info["model_id"] == "job-cls"
    from mcv_vertex.serving import load_model

    model = load_model(tmp_path, threads=1)
    assert model.task == "classification" and model.labels == CLASSES
    assert model.classifier.model_id == "job-cls"


@pytest.mark.slow
def test_detection_trains_the_fcos_detector(gcs: dict[str, Any], tmp_path: Path) -> None:
    prefix = "p/jobs/job-det/model/"
    result = _run_task(
        gcs,
        ["--dataset", gcs["detection"], "--task", "detection", "--hp", "max_steps=2", "--hp", "num_threads=1"],
        {"AIP_MODEL_DIR": f"gs://{BUCKET}/{prefix}", "MCV_TASK_MAX_EPOCHS": "1", "MCV_TASK_MAX_IMAGE_SIZE": "48"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = _objects(gcs, prefix)
    assert {"model.onnx", "labels.json", "metrics.json", "mcv_model.json"} <= set(found)
    assert not [name for name in found if name.endswith(".pt")]
    for name, blob in found.items():
        blob.download_to_filename(str(tmp_path / name))
    from mcv_vertex.serving import load_model

    model = load_model(tmp_path, threads=1)
    assert model.task == "detection" and model.labels == ["box", "ball"]
    assert model.detector.metadata["mcv.image_size"] == "48x48"  # the image-size cap
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2


def test_a_missing_dataset_fails_with_one_clear_line(gcs: dict[str, Any]) -> None:
    uri = f"gs://{BUCKET}/p/datasets/nope/dataset.jsonl"
    result = _run_task(
        gcs, ["--dataset", uri, "--task", "classification"], {"AIP_MODEL_DIR": f"gs://{BUCKET}/p/jobs/bad/model/"}
    )
    assert result.returncode == 1
    last = _last_line(result.stderr)
    assert last.startswith(vtask.FAILURE_PREFIX) and uri in last and "does not exist" in last, last
    assert not _objects(gcs, "p/jobs/bad/")


def test_a_task_that_does_not_match_the_dataset_fails(gcs: dict[str, Any]) -> None:
    result = _run_task(
        gcs,
        ["--dataset", gcs["classification"], "--task", "detection"],
        {"AIP_MODEL_DIR": f"gs://{BUCKET}/p/jobs/mismatch/model/"},
    )
    assert result.returncode == 1
    last = _last_line(result.stderr)
    assert "holds a classification dataset but --task is detection" in last, last


def test_a_missing_image_is_named(gcs: dict[str, Any], tmp_path: Path) -> None:
    bucket = _client(gcs["emulator"]).bucket(BUCKET)
    line = {
        "imageGcsUri": f"gs://{BUCKET}/p/datasets/gone/images/x.png",
        "classificationAnnotation": {"displayName": "red"},
    }
    bucket.blob("p/datasets/gone/dataset.jsonl").upload_from_string(json.dumps(line) + "\n")
    result = _run_task(
        gcs,
        ["--dataset", f"gs://{BUCKET}/p/datasets/gone/dataset.jsonl", "--task", "classification"],
        {"AIP_MODEL_DIR": str(tmp_path / "model")},
    )
    assert result.returncode == 1
    last = _last_line(result.stderr)
    assert f"image gs://{BUCKET}/p/datasets/gone/images/x.png" in last and "does not exist" in last, last


def test_bad_json_names_the_gcs_line(gcs: dict[str, Any], tmp_path: Path) -> None:
    bucket = _client(gcs["emulator"]).bucket(BUCKET)
    bucket.blob("p/datasets/broken/dataset.jsonl").upload_from_string("{not json\n")
    uri = f"gs://{BUCKET}/p/datasets/broken/dataset.jsonl"
    result = _run_task(gcs, ["--dataset", uri, "--task", "classification"], {"AIP_MODEL_DIR": str(tmp_path / "model")})
    assert result.returncode == 1
    assert _last_line(result.stderr).startswith(f"{vtask.FAILURE_PREFIX}{uri}:1: not valid JSON")


def test_a_non_chief_replica_trains_and_writes_nothing(gcs: dict[str, Any], tmp_path: Path) -> None:
    spec = {
        "cluster": {"workerpool0": ["cmle-training-workerpool0-0:2222"], "workerpool1": ["w1-0:2222", "w1-1:2222"]},
        "task": {"type": "workerpool1", "index": 0},
        "environment": "cloud",
    }
    result = _run_task(
        gcs,
        ["--dataset", f"gs://{BUCKET}/p/datasets/nope/dataset.jsonl", "--task", "classification"],
        {"AIP_MODEL_DIR": f"gs://{BUCKET}/p/jobs/worker/model/", "CLUSTER_SPEC": json.dumps(spec)},
    )
    assert result.returncode == 0, result.stderr
    assert "is not the chief" in result.stderr and "trains on one node" in result.stderr
    assert not _objects(gcs, "p/jobs/worker/")


def test_usage_errors_exit_2(gcs: dict[str, Any]) -> None:
    result = _run_task(gcs, ["--dataset", "gs://b/d.jsonl", "--task", "segmentation"], {})
    assert result.returncode == 2 and "invalid choice" in result.stderr


# ------------------------------------------------------------------------------------------- in process


@pytest.mark.parametrize(
    ("env", "chief"),
    [
        ({}, True),
        ({"CLUSTER_SPEC": json.dumps({"task": {"type": "workerpool0", "index": 0}})}, True),
        ({"CLUSTER_SPEC": json.dumps({"task": {"type": "workerpool0", "index": 1}})}, False),
        ({"CLUSTER_SPEC": json.dumps({"task": {"type": "workerpool2", "index": 0}})}, False),
        ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a"]}, "task": {"type": "chief", "index": 0}})}, True),
        ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a"], "worker": ["b"]}, "task": {"type": "worker"}})}, False),
        ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 0}})}, True),
        ({"CLUSTER_SPEC": "{broken"}, True),
    ],
)
def test_replica_role(env: dict[str, str], chief: bool) -> None:
    assert vtask.replica_role(env)[0] is chief


def test_engine_config_applies_caps_and_arguments(tmp_path: Path) -> None:
    dataset = _classification(tmp_path / "d", count=9, size=40)
    args = vtask.TaskArgs(dataset="gs://b/d.jsonl", task="classification", epochs=5, batch_size=4)
    config = vtask.engine_config(args, dataset, {"MCV_TASK_MAX_EPOCHS": "2", "MCV_TASK_MAX_IMAGE_SIZE": "24"})
    assert config["epochs"] == 2 and config["image_size"] == 24 and config["batch_size"] == 4
    assert len(config["train"]) == 6 and len(config["val"]) == 3
    uncapped = vtask.engine_config(vtask.TaskArgs("gs://b/d.jsonl", "classification", image_size=36), dataset, {})
    assert uncapped["epochs"] == vtask.DEFAULT_EPOCHS and uncapped["image_size"] == 36
    with pytest.raises(BadInput, match="unknown hyperparameter 'nope'"):
        vtask.engine_config(
            vtask.TaskArgs("gs://b/d.jsonl", "classification", hyperparameters={"nope": "1"}), dataset, {}
        )
    with pytest.raises(BadInput, match="MCV_TASK_MAX_EPOCHS"):
        vtask.engine_config(args, dataset, {"MCV_TASK_MAX_EPOCHS": "x"})
    with pytest.raises(DatasetError, match="holds a classification dataset"):
        vtask.engine_config(vtask.TaskArgs("gs://b/d.jsonl", "detection"), dataset, {})


def test_model_id_and_uri_helpers() -> None:
    assert vtask.model_id_for({}, "gs://b/p/jobs/123/model/") == "123"
    assert vtask.model_id_for({"CLOUD_ML_JOB_ID": "9"}, "gs://b/p/jobs/123/model/") == "9"
    assert vtask.split_gs_uri("gs://b/a/c.txt") == ("b", "a/c.txt")
    with pytest.raises(BadInput):
        vtask.split_gs_uri("s3://b/a")
