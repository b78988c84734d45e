"""The Custom Vision emulator's iterations through the real SDK: the Training -> Completed walk with a REAL model,
nothing-changed retraining, queued failures, performance, publishing, real predictions (classification,
multilabel, detection), prediction limits, export (refused on non-compact domains; ONNX Exporting -> Done and the
downloaded zip) and the deletion rules.

Three real trainings for the module (tiny images, capped epochs and steps): a Multiclass project on a compact
domain (``trained``), a Multilabel project on a non-compact domain and an object detection project.
"""

from __future__ import annotations

import io
import json
import random
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.prediction.models import (
    CustomVisionErrorException as PredictionError,
)
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from mcv_customvision.emulator import CustomVisionEmulator, customvision_emulator

CLASSIFICATION_COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"
CLASSIFICATION_GENERAL = "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
DETECTION_COMPACT = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"
RED, BLUE = (210, 20, 20), (20, 20, 210)


def png(colour: tuple[int, int, int], seed: int, size: int = 40) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), colour)
    for _ in range(15):
        image.putpixel((rng.randrange(size), rng.randrange(size)), tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def wait(read: Any, busy: str, timeout: float = 240.0) -> tuple[Any, list[str]]:
    """Poll ``read()`` while its status is ``busy``; the last answer and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        answer = read()
        if not seen or seen[-1] != answer.status:
            seen.append(answer.status)
        if answer.status != busy:
            return answer, seen
        assert time.monotonic() < deadline, f"still {busy} after {timeout} s"
        time.sleep(0.02)


def error_of(exc: Exception) -> tuple[int, str]:
    return exc.response.status_code, exc.error.code  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CustomVisionEmulator]:
    with customvision_emulator(
        pace=0.02, state_dir=tmp_path_factory.mktemp("cv-training"), max_epochs=4, max_steps=4
    ) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def trainer(emu: CustomVisionEmulator) -> CustomVisionTrainingClient:
    return CustomVisionTrainingClient(emu.endpoint, ApiKeyCredentials(in_headers={"Training-key": emu.training_key}))


@pytest.fixture(scope="module")
def predictor(emu: CustomVisionEmulator) -> CustomVisionPredictionClient:
    credentials = ApiKeyCredentials(in_headers={"Prediction-key": emu.prediction_key})
    return CustomVisionPredictionClient(emu.endpoint, credentials)


def colour_project(
    trainer: CustomVisionTrainingClient, name: str, domain: str, kind: str, per_tag: int = 6
) -> tuple[Any, dict[str, str]]:
    project = trainer.create_project(name, domain_id=domain, classification_type=kind)
    tags = {label: trainer.create_tag(project.id, label).id for label in ("red", "blue")}
    entries = [
        ImageFileCreateEntry(name=f"{label}{i}", contents=png(colour, seed * 100 + i), tag_ids=[tags[label]])
        for seed, (label, colour) in enumerate((("red", RED), ("blue", BLUE)), start=1)
        for i in range(per_tag)
    ]
    assert trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries)).is_batch_successful
    return project, tags


@pytest.fixture(scope="module")
def trained(trainer: CustomVisionTrainingClient) -> dict[str, Any]:
    project, tags = colour_project(trainer, "colours", CLASSIFICATION_COMPACT, "Multiclass")
    started = trainer.train_project(project.id)
    assert started.status == "Training"
    iteration, seen = wait(lambda: trainer.get_iteration(project.id, started.id), "Training")
    return {"project": project, "tags": tags, "iteration": iteration, "seen": seen, "started": started}


# ------------------------------------------------------------------------------------------------ training


def test_iteration_walks_training_to_completed_with_a_real_model(
    emu: CustomVisionEmulator, trained: dict[str, Any]
) -> None:
    iteration = trained["iteration"]
    assert trained["seen"][0] == "Training" and trained["seen"][-1] == "Completed"
    assert iteration.training_error_details is None and iteration.trained_at is not None
    assert iteration.exportable and "ONNX" in iteration.exportable_to
    assert (iteration.classification_type, iteration.training_type) == ("Multiclass", "Regular")
    assert iteration.domain_id == CLASSIFICATION_COMPACT and iteration.name == "Iteration 1"
    assert emu.state_dir is not None
    model = emu.state_dir / "projects" / trained["project"].id / "iterations" / iteration.id / "model"
    assert (model / "model.onnx").is_file()
    info = json.loads((model / "emulator.json").read_text())
    assert info["labels"] == ["red", "blue"] and info["task"] == "classification"


def test_nothing_changed_is_refused_and_a_change_is_not(
    trainer: CustomVisionTrainingClient, trained: dict[str, Any]
) -> None:
    project = trained["project"]
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.train_project(project.id)
    assert error_of(caught.value) == (400, "BadRequestTrainingNotNeeded")
    assert [i.id for i in trainer.get_iterations(project.id)] == [trained["iteration"].id]


def test_performance_per_tag(trainer: CustomVisionTrainingClient, trained: dict[str, Any]) -> None:
    project, iteration = trained["project"], trained["iteration"]
    performance = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5)
    assert [t.name for t in performance.per_tag_performance] == ["red", "blue"]
    assert {t.id for t in performance.per_tag_performance} == set(trained["tags"].values())
    for value in (performance.precision, performance.recall, performance.average_precision):
        assert 0.0 <= value <= 1.0
    assert performance.average_precision > 0.5  # red and blue images are easy
    everything = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.0)
    assert everything.recall == 1.0 and everything.precision == pytest.approx(0.5)
    assert all(t.recall_std_deviation == 0.0 for t in everything.per_tag_performance)


def test_publish_and_real_classification(
    emu: CustomVisionEmulator,
    trainer: CustomVisionTrainingClient,
    predictor: CustomVisionPredictionClient,
    trained: dict[str, Any],
) -> None:
    project, iteration = trained["project"], trained["iteration"]
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.publish_iteration(project.id, iteration.id, "colours", "00000000-0000-0000-0000-000000000000")
    assert error_of(caught.value) == (400, "BadRequestInvalidPublishTarget")
    with pytest.raises(PredictionError) as missing:
        predictor.classify_image(project.id, "colours", png(RED, 9001))
    assert error_of(missing.value) == (404, "NotFound") and missing.value.error.message == "Invalid iteration"
    assert trainer.publish_iteration(project.id, iteration.id, "colours", emu.prediction_resource_id) is True
    assert trainer.get_iteration(project.id, iteration.id).publish_name == "colours"
    for colour, label in ((RED, "red"), (BLUE, "blue")):
        answer = predictor.classify_image(project.id, "colours", png(colour, 9100 + len(label)))
        assert (answer.project, answer.iteration) == (project.id, iteration.id)
        assert answer.predictions[0].tag_name == label
        assert sum(p.probability for p in answer.predictions) == pytest.approx(1.0, abs=1e-4)
        assert answer.predictions[0].tag_id == trained["tags"][label] and answer.predictions[0].bounding_box is None
    assert predictor.classify_image_with_no_store(project.id, "colours", png(RED, 9200)).predictions
    quick = trainer.quick_test_image(project.id, png(BLUE, 9300), iteration_id=iteration.id)
    assert quick.predictions[0].tag_name == "blue"


def test_prediction_refusals(
    predictor: CustomVisionPredictionClient, emu: CustomVisionEmulator, trained: dict[str, Any]
) -> None:
    project = trained["project"]
    too_big = b"\xff\xd8" + b"\0" * (4 * 1024 * 1024)
    for body, code in ((too_big, "BadRequestImageSizeBytes"), (b"not an image", "BadRequestImageFormat")):
        with pytest.raises(PredictionError) as caught:
            predictor.classify_image(project.id, "colours", body)
        assert error_of(caught.value) == (400, code)
    with pytest.raises(PredictionError) as caught:
        predictor.detect_image(project.id, "colours", png(RED, 1))
    assert error_of(caught.value) == (400, "BadRequestNotSupported")
    with pytest.raises(PredictionError) as caught:
        predictor.classify_image("00000000-0000-0000-0000-00000000000f", "colours", png(RED, 1))
    assert error_of(caught.value) == (404, "NotFound")
    # raw bytes (application/octet-stream) are accepted as well as multipart
    request = urllib.request.Request(
        f"{emu.endpoint}/customvision/v3.1/prediction/{project.id}/classify/iterations/colours/image/nostore",
        data=png(RED, 77),
        method="POST",
        headers={"Prediction-key": emu.prediction_key, "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["predictions"][0]["tagName"] == "red"


def test_export_onnx_walks_to_done_and_downloads_the_zip(
    trainer: CustomVisionTrainingClient, trained: dict[str, Any]
) -> None:
    pytest.importorskip("mcv_customvision.emulator.export")
    project, iteration = trained["project"], trained["iteration"]
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.export_iteration(project.id, iteration.id, "ONNX", flavor="Linux")
    assert error_of(caught.value) == (400, "BadRequestExportValidationFailed")
    started = trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert (started.platform, started.status, started.download_uri) == ("ONNX", "Exporting", None)
    done, seen = wait(lambda: trainer.get_exports(project.id, iteration.id)[0], "Exporting", timeout=60)
    assert seen[-1] == "Done" and done.download_uri.endswith(".zip")
    with urllib.request.urlopen(done.download_uri, timeout=30) as answer:  # no key, like a SAS URL
        archive = zipfile.ZipFile(io.BytesIO(answer.read()))
    names = set(archive.namelist())
    assert {"model.onnx", "labels.txt", "cvexport.manifest"} <= names
    assert archive.read("labels.txt").decode().split() == ["red", "blue"]
    trainer.export_iteration(project.id, iteration.id, "TensorFlow", flavor="TensorFlowLite")
    deadline = time.monotonic() + 60
    while {e.status for e in trainer.get_exports(project.id, iteration.id)} != {"Done"}:
        assert time.monotonic() < deadline, "the TensorFlow Lite export did not finish"
        time.sleep(0.02)
    exports = trainer.get_exports(project.id, iteration.id)
    assert [(e.platform, e.flavor) for e in exports] == [("ONNX", None), ("TensorFlow", "TensorFlowLite")]


# ----------------------------------------------------------------------------------- other kinds of project


def test_failed_iteration_from_fail_next_iteration(
    emu: CustomVisionEmulator, trainer: CustomVisionTrainingClient
) -> None:
    project, _ = colour_project(trainer, "doomed", CLASSIFICATION_COMPACT, "Multiclass", per_tag=5)
    emu.fail_next_iteration("Training failed: the emulator was told to fail this iteration.")
    started = trainer.train_project(project.id)
    iteration, seen = wait(lambda: trainer.get_iteration(project.id, started.id), "Training")
    assert seen == ["Training", "Failed"]
    assert iteration.training_error_details == "Training failed: the emulator was told to fail this iteration."
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.publish_iteration(project.id, iteration.id, "doomed", emu.prediction_resource_id)
    assert error_of(caught.value) == (400, "BadRequestIterationIsNotTrained")
    trainer.delete_iteration(project.id, iteration.id)
    trainer.delete_project(project.id)


def test_multilabel_on_a_general_domain_trains_but_does_not_export(
    emu: CustomVisionEmulator, trainer: CustomVisionTrainingClient, predictor: CustomVisionPredictionClient
) -> None:
    project, _ = colour_project(trainer, "labels", CLASSIFICATION_GENERAL, "Multilabel", per_tag=5)
    started = trainer.train_project(project.id)
    iteration, seen = wait(lambda: trainer.get_iteration(project.id, started.id), "Training")
    assert seen == ["Training", "Completed"] and iteration.classification_type == "Multilabel"
    assert not iteration.exportable and iteration.exportable_to == []
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert error_of(caught.value) == (400, "BadRequestExportValidationFailed")
    assert "compact" in caught.value.error.message
    trainer.publish_iteration(project.id, iteration.id, "labels", emu.prediction_resource_id)
    answer = predictor.classify_image(project.id, "labels", png(RED, 4242))
    assert {p.tag_name for p in answer.predictions} == {"red", "blue"}
    assert all(0.0 <= p.probability <= 1.0 for p in answer.predictions)
    trainer.unpublish_iteration(project.id, iteration.id)
    trainer.delete_project(project.id)


def test_object_detection_trains_and_detects(
    tmp_path: Path,
    emu: CustomVisionEmulator,
    trainer: CustomVisionTrainingClient,
    predictor: CustomVisionPredictionClient,
) -> None:
    from multicloud_cv.bundled import fashion_mnist_available
    from multicloud_cv.datasets.synthetic_detection import generate_detection_dataset

    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not installed")
    dataset = generate_detection_dataset(
        tmp_path / "boxes",
        classes=["trouser", "bag"],
        images=40,
        size=(64, 64),
        max_objects=2,
        splits=None,
        negative_fraction=0.0,
    )
    project = trainer.create_project("boxes", domain_id=DETECTION_COMPACT)
    tags = [trainer.create_tag(project.id, name).id for name in dataset.classes]
    entries = []
    for n, record in enumerate(dataset.images):
        width, height = record.width or 64, record.height or 64
        regions = [
            Region(
                tag_id=tags[box.label],
                left=box.x_min / width,
                top=box.y_min / height,
                width=(box.x_max - box.x_min) / width,
                height=(box.y_max - box.y_min) / height,
            )
            for box in record.boxes
        ]
        entries.append(
            ImageFileCreateEntry(name=f"{n}", contents=dataset.absolute(record).read_bytes(), regions=regions)
        )
    for start in range(0, len(entries), 64):
        summary = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries[start : start + 64]))
        assert summary.is_batch_successful
    started = trainer.train_project(project.id)
    iteration, seen = wait(lambda: trainer.get_iteration(project.id, started.id), "Training")
    assert seen == ["Training", "Completed"], iteration.training_error_details
    performance = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.01, overlap_threshold=0.3)
    assert [t.name for t in performance.per_tag_performance] == ["trouser", "bag"]
    trainer.publish_iteration(project.id, iteration.id, "boxes", emu.prediction_resource_id)
    answer = predictor.detect_image(project.id, "boxes", dataset.absolute(dataset.images[0]).read_bytes())
    assert answer.iteration == iteration.id
    probabilities = [p.probability for p in answer.predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    for prediction in answer.predictions:
        box = prediction.bounding_box
        assert prediction.tag_name in ("trouser", "bag")
        assert 0.0 <= box.left <= 1.0 and 0.0 <= box.top <= 1.0 and box.width >= 0 and box.height >= 0
    with pytest.raises(PredictionError) as caught:
        predictor.classify_image(project.id, "boxes", png(RED, 1))
    assert error_of(caught.value) == (400, "BadRequestNotSupported")
    trainer.unpublish_iteration(project.id, iteration.id)
    trainer.delete_project(project.id)


# ------------------------------------------------------------------------------------- deletion rules (last)


def test_unpublish_and_delete_rules(
    emu: CustomVisionEmulator,
    trainer: CustomVisionTrainingClient,
    predictor: CustomVisionPredictionClient,
    trained: dict[str, Any],
) -> None:
    project, iteration = trained["project"], trained["iteration"]
    if not trainer.get_iteration(project.id, iteration.id).publish_name:
        trainer.publish_iteration(project.id, iteration.id, "colours", emu.prediction_resource_id)
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.delete_iteration(project.id, iteration.id)
    assert error_of(caught.value) == (400, "BadRequestIterationIsPublished")
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.delete_project(project.id)
    assert error_of(caught.value) == (400, "BadRequestIterationIsPublished")
    trainer.unpublish_iteration(project.id, iteration.id)
    with pytest.raises(PredictionError) as caught:
        predictor.classify_image(project.id, "colours", png(RED, 1))
    assert error_of(caught.value) == (404, "NotFound")
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer.unpublish_iteration(project.id, iteration.id)
    assert error_of(caught.value) == (400, "BadRequestIterationNotPublished")
    trainer.delete_iteration(project.id, iteration.id)
    assert trainer.get_iterations(project.id) == []
    trainer.delete_project(project.id)
    assert emu.project_ids() == []
