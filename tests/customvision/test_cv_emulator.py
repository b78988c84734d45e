"""The Custom Vision emulator through the real SDK (and plain HTTP for wire details): keys, domains, projects,
tags, image batches and their limits, training validation, injected faults, tiers, admin routes, life cycle.

No test here trains a model (test_cv_emulator_training.py does): every TrainProject call is refused before
training starts, so the module runs in a few seconds.
"""

from __future__ import annotations

import io
import json
import random
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorCodes,
    CustomVisionErrorException,
    ImageCreateStatus,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from mcv_customvision.emulator import CustomVisionEmulator, customvision_emulator
from mcv_customvision.limits import LIMITS

EMULATOR_DIR = Path(__file__).resolve().parents[2] / "plugins/customvision/mcv_customvision/emulator"
TRAINING = "/customvision/v3.4-preview/training"
PREDICTION = "/customvision/v3.1/prediction"
CLASSIFICATION_COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"
DETECTION_COMPACT = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)

# ------------------------------------------------------------------------------------------------- helpers


def trainer(emu: CustomVisionEmulator, key: str | None = None) -> CustomVisionTrainingClient:
    return CustomVisionTrainingClient(
        emu.endpoint, ApiKeyCredentials(in_headers={"Training-key": key or emu.training_key})
    )


def predictor(emu: CustomVisionEmulator, key: str | None = None) -> CustomVisionPredictionClient:
    credentials = ApiKeyCredentials(in_headers={"Prediction-key": key or emu.prediction_key})
    return CustomVisionPredictionClient(emu.endpoint, credentials)


def png(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (40, 40)) -> bytes:
    """A small PNG of one colour with a few random pixels (unique per seed, so never a duplicate)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, colour)
    for _ in range(20):
        image.putpixel((rng.randrange(size[0]), rng.randrange(size[1])), tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def http(
    emu: CustomVisionEmulator,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(emu.endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def error_of(exc: CustomVisionErrorException) -> tuple[int, str, str]:
    """HTTP status, code and message of an SDK error."""
    return exc.response.status_code, exc.error.code, exc.error.message


def new_project(emu: CustomVisionEmulator, name: str, **kwargs: Any) -> Any:
    options = {"domain_id": CLASSIFICATION_COMPACT, "classification_type": "Multiclass", **kwargs}
    return trainer(emu).create_project(name, **options)


@pytest.fixture(scope="module")
def emu(customvision_emulator: CustomVisionEmulator) -> CustomVisionEmulator:
    return customvision_emulator


@pytest.fixture(autouse=True)
def _clean_faults(customvision_emulator: CustomVisionEmulator) -> Any:
    yield
    customvision_emulator.reset_faults()


# ------------------------------------------------------------------------------------------------ keys, codes


def test_wrong_or_missing_key_is_the_gateways_401(emu: CustomVisionEmulator) -> None:
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer(emu, key="not-the-key").get_projects()
    assert caught.value.response.status_code == 401
    for headers in ({}, {"training-key": "wrong"}, {"Prediction-key": emu.prediction_key}):
        status, _, body = http(emu, "GET", TRAINING + "/projects", headers=headers)
        assert status == 401
        assert json.loads(body) == {"error": {"code": "401", "message": ACCESS_DENIED}}
    # header names are case-insensitive
    assert http(emu, "GET", TRAINING + "/domains", headers={"TRAINING-KEY": emu.training_key})[0] == 200
    # a training key on the prediction API is wrong too
    with pytest.raises(Exception) as swapped:
        predictor(emu, key=emu.training_key).classify_image("p", "n", png((1, 2, 3), 1))
    assert swapped.value.response.status_code == 401  # type: ignore[attr-defined]
    assert emu.calls("ClassifyImage")[-1]["status"] == 401


def test_every_error_code_is_a_value_of_the_sdk_enum() -> None:
    values = {code.value for code in CustomVisionErrorCodes}
    used: set[str] = set()
    for path in EMULATOR_DIR.glob("*.py"):
        used |= set(re.findall(r'"((?:BadRequest|NotFound|Error|Forbidden)[A-Za-z]*)"', path.read_text()))
    statuses = {s.value for s in ImageCreateStatus}
    unknown = {code for code in used if code not in values and code not in statuses}
    assert used and not unknown


def test_unknown_path_and_unknown_resources(emu: CustomVisionEmulator) -> None:
    status, _, body = http(emu, "GET", "/customvision/v9/nothing", headers={"Training-key": emu.training_key})
    assert status == 404 and json.loads(body)["error"]["code"] == "404"
    client = trainer(emu)
    with pytest.raises(CustomVisionErrorException) as caught:
        client.get_project("00000000-0000-0000-0000-000000000001")
    assert error_of(caught.value)[:2] == (404, "NotFoundProject")
    project = new_project(emu, "unknown-resources")
    with pytest.raises(CustomVisionErrorException) as caught:
        client.get_iteration(project.id, "00000000-0000-0000-0000-000000000002")
    assert error_of(caught.value)[:2] == (404, "NotFoundIteration")
    client.delete_project(project.id)


# ------------------------------------------------------------------------------------------- domains, projects


def test_domains(emu: CustomVisionEmulator) -> None:
    found = trainer(emu).get_domains()
    assert {d.type for d in found} == {"Classification", "ObjectDetection"}
    compact = [d for d in found if d.exportable]
    assert compact and all("(compact)" in d.name and "ONNX" in d.exportable_platforms for d in compact)
    assert all(not d.exportable_platforms for d in found if not d.exportable)
    one = trainer(emu).get_domain(DETECTION_COMPACT)
    assert one.name == "General (compact)" and one.type == "ObjectDetection"


def test_create_projects_of_each_kind_and_refusals(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    multiclass = new_project(emu, "kinds-multiclass", description="d")
    multilabel = new_project(emu, "kinds-multilabel", classification_type="Multilabel")
    detection = client.create_project("kinds-detection", domain_id=DETECTION_COMPACT)
    assert multiclass.settings.classification_type == "Multiclass" and multiclass.description == "d"
    assert multilabel.settings.classification_type == "Multilabel"
    assert detection.settings.domain_id == DETECTION_COMPACT and detection.settings.classification_type is None
    assert {multiclass.id, multilabel.id, detection.id} <= set(emu.project_ids())
    assert client.get_project(detection.id).name == "kinds-detection"
    refusals = [
        ({"domain_id": "11111111-1111-1111-1111-111111111111"}, "BadRequestProjectUnknownDomain"),
        ({"classification_type": "Multiple"}, "BadRequestProjectUnknownClassification"),
        (
            {"domain_id": "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "target_export_platforms": ["ONNX"]},
            "BadRequestProjectUnsupportedExportPlatform",
        ),
    ]
    for kwargs, code in refusals:
        with pytest.raises(CustomVisionErrorException) as caught:
            new_project(emu, "kinds-refused", **kwargs)
        assert error_of(caught.value)[:2] == (400, code)
    with pytest.raises(CustomVisionErrorException) as caught:
        new_project(emu, "kinds-multiclass")
    assert error_of(caught.value)[1] == "BadRequestProjectNameNotUnique"
    for project in (multiclass, multilabel, detection):
        client.delete_project(project.id)
    assert not {multiclass.id, multilabel.id, detection.id} & set(emu.project_ids())


def test_f0_tier_caps_projects(tmp_path: Path) -> None:
    with customvision_emulator(pace=0.02, state_dir=tmp_path, tier="F0") as small:
        new_project(small, "one")
        new_project(small, "two")
        with pytest.raises(CustomVisionErrorException) as caught:
            new_project(small, "three")
        status, code, message = error_of(caught.value)
        assert (status, code) == (400, "BadRequestExceedProjectLimit") and "F0" in message
        assert len(small.project_ids()) == 2


# ------------------------------------------------------------------------------------------------------ tags


def test_tags(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    project = new_project(emu, "tags")
    cat = client.create_tag(project.id, "cat", description="a cat")
    assert (cat.name, cat.type, cat.image_count) == ("cat", "Regular", 0)
    client.create_tag(project.id, "nothing", type="Negative")
    for name, kind, code in (
        ("CAT", None, "BadRequestTagNameNotUnique"),
        ("dog", "Strange", "BadRequestTagType"),
        ("none2", "Negative", "BadRequestMultipleNegativeTag"),
        (" ", None, "BadRequestTagName"),
    ):
        with pytest.raises(CustomVisionErrorException) as caught:
            client.create_tag(project.id, name, type=kind)
        assert error_of(caught.value)[:2] == (400, code)
    client.create_images_from_files(
        project.id,
        ImageFileCreateBatch(images=[ImageFileCreateEntry(name="c", contents=png((9, 9, 9), 1))], tag_ids=[cat.id]),
    )
    assert {t.name: t.image_count for t in client.get_tags(project.id)} == {"cat": 1, "nothing": 0}
    assert client.get_tag(project.id, cat.id).image_count == 1
    client.delete_tag(project.id, cat.id)
    assert [t.name for t in client.get_tags(project.id)] == ["nothing"]
    client.delete_project(project.id)


# ---------------------------------------------------------------------------------------------- image batches


def test_upload_json_multipart_and_octet_stream(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    project = new_project(emu, "uploads")
    tag = client.create_tag(project.id, "blue")
    entries = [ImageFileCreateEntry(name=f"b{i}.png", contents=png((0, 0, 200), i)) for i in range(3)]
    summary = client.create_images_from_files(project.id, ImageFileCreateBatch(images=entries, tag_ids=[tag.id]))
    assert summary.is_batch_successful
    assert [(r.source_url, r.status) for r in summary.images] == [(f"b{i}.png", "OK") for i in range(3)]
    first = summary.images[0].image
    assert (first.width, first.height) == (40, 40) and [t.tag_name for t in first.tags] == ["blue"]
    # multipart/form-data, as the SDK sends it (field imageData), tags in the query
    summary = client.create_images_from_data(project.id, png((0, 0, 200), 10), tag_ids=[tag.id])
    assert summary.is_batch_successful and summary.images[0].status == "OK"
    # application/octet-stream
    headers = {"Training-key": emu.training_key, "Content-Type": "application/octet-stream"}
    status, _, body = http(
        emu, "POST", f"{TRAINING}/projects/{project.id}/images?tagIds={tag.id}", png((0, 0, 200), 11), headers
    )
    assert status == 200 and json.loads(body)["images"][0]["status"] == "OK"
    assert client.get_tagged_image_count(project.id) == 5
    assert client.get_image_count(project.id) == 5
    assert len(client.get_tagged_images(project.id, take=2)) == 2
    # the image URIs answer the bytes
    with urllib.request.urlopen(first.original_image_uri, timeout=10) as answer:
        assert answer.read() == png((0, 0, 200), 0)
    client.delete_project(project.id)


def test_batch_limits(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    project = new_project(emu, "batch-limits")
    too_many = [ImageFileCreateEntry(name=str(i), contents=png((5, 5, 5), i)) for i in range(65)]
    with pytest.raises(CustomVisionErrorException) as caught:
        client.create_images_from_files(project.id, ImageFileCreateBatch(images=too_many))
    status, code, message = error_of(caught.value)
    assert (status, code) == (400, "BadRequestImageBatch") and "64 images" in message
    tags = [client.create_tag(project.id, f"t{i}").id for i in range(21)]
    entries = [ImageFileCreateEntry(name=str(i), contents=png((5, 5, 5), i), tag_ids=[tags[i]]) for i in range(21)]
    with pytest.raises(CustomVisionErrorException) as caught:
        client.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    assert error_of(caught.value)[:2] == (400, "BadRequestImageBatch") and "20 tags" in caught.value.error.message
    with pytest.raises(CustomVisionErrorException) as caught:
        client.create_images_from_files(project.id, ImageFileCreateBatch(images=[]))
    assert error_of(caught.value)[1] == "BadRequestImageBatch"
    # 64 images and 20 tags is the limit, not over it
    summary = client.create_images_from_files(project.id, ImageFileCreateBatch(images=too_many[:64]))
    assert summary.is_batch_successful and len(summary.images) == LIMITS.max_images_per_batch
    client.delete_project(project.id)


def _tiny_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 0).save(buffer, "PNG")
    return buffer.getvalue()


def test_partial_success_is_207_with_each_images_status(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    project = client.create_project("partial", domain_id=DETECTION_COMPACT)
    tag = client.create_tag(project.id, "thing")
    negative = client.create_tag(project.id, "none", type="Negative")
    box = Region(tag_id=tag.id, left=0.1, top=0.1, width=0.5, height=0.5)
    existing = png((1, 100, 1), 1)
    client.create_images_from_files(
        project.id, ImageFileCreateBatch(images=[ImageFileCreateEntry(name="old", contents=existing, regions=[box])])
    )
    entries = [
        ImageFileCreateEntry(name="ok", contents=png((1, 100, 1), 2), regions=[box]),
        ImageFileCreateEntry(name="duplicate", contents=existing, regions=[box]),
        ImageFileCreateEntry(name="not-an-image", contents=b"hello, world"),
        ImageFileCreateEntry(name="too-big", contents=b"\0" * (LIMITS.max_image_bytes + 1)),
        ImageFileCreateEntry(name="too-wide", contents=_tiny_png((LIMITS.max_image_side + 1, 1))),
        ImageFileCreateEntry(
            name="unknown-tag",
            contents=png((1, 100, 1), 3),
            regions=[Region(tag_id="99999999-9999-9999-9999-999999999999", left=0, top=0, width=1, height=1)],
        ),
        ImageFileCreateEntry(name="regions", contents=png((1, 100, 1), 4), regions=[box] * 301),
        ImageFileCreateEntry(name="mixed", contents=png((1, 100, 1), 5), tag_ids=[negative.id], regions=[box]),
        ImageFileCreateEntry(name="small", contents=_tiny_png((8, 8))),
    ]
    summary = client.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    assert not summary.is_batch_successful
    assert {r.source_url: r.status for r in summary.images} == {
        "ok": "OK",
        "duplicate": "OKDuplicate",
        "not-an-image": "ErrorImageFormat",
        "too-big": "ErrorImageSize",
        "too-wide": "ErrorImageDimensions",
        "unknown-tag": "ErrorInvalidTag",
        "regions": "ErrorRegionLimitExceed",
        "mixed": "ErrorNegativeAndRegularTagOnSameImage",
        "small": "OK",
    }
    duplicate = next(r for r in summary.images if r.source_url == "duplicate")
    assert duplicate.image is not None and duplicate.image.regions[0].tag_name == "thing"
    assert emu.calls("CreateImagesFromFiles")[-1]["status"] == 207
    assert client.get_image_count(project.id) == 3
    client.delete_project(project.id)


def test_regions_are_checked(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    detection = client.create_project("regions-detection", domain_id=DETECTION_COMPACT)
    classification = new_project(emu, "regions-classification")
    for project in (detection, classification):
        tag = client.create_tag(project.id, "x")
        outside = Region(tag_id=tag.id, left=0.7, top=0.1, width=0.5, height=0.2)
        entry = ImageFileCreateEntry(name="a", contents=png((3, 3, 3), 1), regions=[outside])
        with pytest.raises(CustomVisionErrorException) as caught:
            client.create_images_from_files(project.id, ImageFileCreateBatch(images=[entry]))
        assert error_of(caught.value)[:2] == (400, "BadRequestImageRegions")
    headers = {"Training-key": emu.training_key, "Content-Type": "application/json"}
    body = {"images": [{"name": "a", "contents": "AAAA", "regions": [{"tagId": "x", "left": 0.1, "top": 0.1}]}]}
    status, _, answer = http(
        emu, "POST", f"{TRAINING}/projects/{detection.id}/images/files", json.dumps(body).encode(), headers
    )
    assert status == 400 and json.loads(answer)["code"] == "BadRequestImageRegions"
    assert "width" in json.loads(answer)["message"]
    client.delete_project(detection.id)
    client.delete_project(classification.id)


# ----------------------------------------------------------------------------------------- training refusals


def _upload(client: CustomVisionTrainingClient, project_id: str, tag_id: str, count: int, seed: int) -> None:
    entries = [
        ImageFileCreateEntry(name=str(i), contents=png((seed % 255, 50, 50), seed * 100 + i)) for i in range(count)
    ]
    client.create_images_from_files(project_id, ImageFileCreateBatch(images=entries, tag_ids=[tag_id]))


def test_too_few_images_per_tag(emu: CustomVisionEmulator) -> None:
    client = trainer(emu)
    project = new_project(emu, "too-few")
    red = client.create_tag(project.id, "red")
    with pytest.raises(CustomVisionErrorException) as caught:
        client.train_project(project.id)
    assert error_of(caught.value)[1] == "BadRequestMultiClassClassificationTrainingValidationFailed"
    _upload(client, project.id, red.id, 6, 1)
    blue = client.create_tag(project.id, "blue")
    _upload(client, project.id, blue.id, 3, 2)
    with pytest.raises(CustomVisionErrorException) as caught:
        client.train_project(project.id)
    status, code, message = error_of(caught.value)
    assert (status, code) == (400, "BadRequestTrainingValidationFailed")
    assert "Not enough images for training" in message and "5 images for every tag" in message
    assert "'blue' has 3" in message
    with pytest.raises(CustomVisionErrorException) as caught:
        client.train_project(project.id, training_type="Advanced", reserved_budget_in_hours=0)
    assert error_of(caught.value)[1] == "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining"
    detection = client.create_project("too-few-detection", domain_id=DETECTION_COMPACT)
    thing = client.create_tag(detection.id, "thing")
    box = Region(tag_id=thing.id, left=0.2, top=0.2, width=0.3, height=0.3)
    entries = [ImageFileCreateEntry(name=str(i), contents=png((9, 9, 90), 500 + i), regions=[box]) for i in range(14)]
    client.create_images_from_files(detection.id, ImageFileCreateBatch(images=entries))
    with pytest.raises(CustomVisionErrorException) as caught:
        client.train_project(detection.id)
    status, code, message = error_of(caught.value)
    assert code == "BadRequestDetectionTrainingValidationFailed" and "'thing' has 14 images with a region" in message
    assert client.get_iterations(project.id) == [] and client.get_iterations(detection.id) == []
    client.delete_project(project.id)
    client.delete_project(detection.id)


# -------------------------------------------------------------------------------------------------- faults


def test_injected_429_has_retry_after_and_the_quota_text(emu: CustomVisionEmulator) -> None:
    project = new_project(emu, "throttled")
    emu.inject(operation="CreateTag", status=429, retry_after=2)
    with pytest.raises(CustomVisionErrorException) as caught:
        trainer(emu).create_tag(project.id, "x")
    response = caught.value.response
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    message = response.json()["error"]["message"]
    assert message.startswith("Requests to the CreateTag Operation under Cognitive Services Custom Vision API")
    assert "Custom_Vision.Training S0 pricing tier. Please retry after 2 seconds." in message
    assert trainer(emu).create_tag(project.id, "x").name == "x"  # used up
    emu.inject(operation="ClassifyImage", status=429)
    status, headers, body = http(
        emu,
        "POST",
        f"{PREDICTION}/{project.id}/classify/iterations/x/image",
        b"",
        {"Prediction-key": emu.prediction_key},
    )
    assert status == 429 and headers["retry-after"] == "1"
    assert "Custom_Vision.Prediction S0" in json.loads(body)["error"]["message"]
    trainer(emu).delete_project(project.id)


def test_injected_503(emu: CustomVisionEmulator) -> None:
    emu.inject(operation="GetProjects", status=503)
    trainer(emu).get_projects()  # msrest retries a 503 at once
    assert [c["status"] for c in emu.calls("GetProjects")[-2:]] == [503, 200]
    emu.inject(operation="GetDomains", status=503)
    status, _, body = http(emu, "GET", TRAINING + "/domains", headers={"Training-key": emu.training_key})
    assert status == 503 and json.loads(body)["code"] == "ErrorFeaturizationServiceUnavailable"
    emu.inject(operation="TrainProject", error="ErrorUnknown", status=500, message="boom")
    status, _, body = http(emu, "POST", TRAINING + "/projects/p/train", headers={"Training-key": emu.training_key})
    assert (status, json.loads(body)) == (500, {"code": "ErrorUnknown", "message": "boom"})


def test_admin_routes_over_http(emu: CustomVisionEmulator) -> None:
    fault = {"operation": "GetDomains", "status": 429, "retry_after": 3, "times": 1}
    status, _, body = http(emu, "POST", "/_emulator/faults", json.dumps(fault).encode())
    assert status == 200 and json.loads(body)["pending"] == 1
    status, headers, _ = http(emu, "GET", TRAINING + "/domains", headers={"Training-key": emu.training_key})
    assert status == 429 and headers["retry-after"] == "3"
    assert http(emu, "POST", "/_emulator/faults", b'{"bogus": 1}')[0] == 400
    http(emu, "POST", "/_emulator/faults", json.dumps(fault).encode())
    assert http(emu, "DELETE", "/_emulator/faults")[0] == 200
    assert emu.faults.pending() == []
    status, _, body = http(emu, "GET", "/_emulator/calls?operation=GetDomains")
    calls = json.loads(body)["calls"]
    assert status == 200 and calls[-1]["status"] == 429 and calls[-1]["path"] == TRAINING + "/domains"
    status, _, body = http(emu, "GET", "/_emulator/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = http(emu, "POST", "/_emulator/fail-next-iteration", b'{"reason": "out of GPUs"}')
    assert status == 200 and emu.faults.next_failure() == "out of GPUs"
    assert http(emu, "GET", "/_emulator/exports/nothing.zip")[0] == 404


# --------------------------------------------------------------------------------------------- life cycle


def test_start_stop_as_mcv_emulate_does(tmp_path: Path) -> None:
    import os

    emulator = CustomVisionEmulator(port=0, pace=0.02, state_dir=tmp_path, bucket=None)
    emulator.start()
    try:
        assert emulator.environment() == {}
        settings = emulator.provider_settings()
        assert settings["MCV_CUSTOMVISION_TRAINING_ENDPOINT"] == emulator.endpoint.rstrip("/")
        assert settings["MCV_CUSTOMVISION_PREDICTION_ENDPOINT"] == emulator.endpoint
        assert settings["MCV_CUSTOMVISION_TRAINING_KEY"] == emulator.training_key != emulator.prediction_key
        assert settings["MCV_CUSTOMVISION_PREDICTION_RESOURCE_ID"].startswith("/subscriptions/")
        assert float(settings["MCV_CUSTOMVISION_POLL_S"]) >= 0.05
        with emulator.patched_environment():
            assert os.environ["MCV_CUSTOMVISION_PREDICTION_KEY"] == emulator.prediction_key
        assert os.environ.get("MCV_CUSTOMVISION_PREDICTION_KEY") != emulator.prediction_key
        assert emulator.endpoint.startswith("http://127.0.0.1:")
        assert trainer(emulator).get_projects() == []
    finally:
        emulator.stop()
    with pytest.raises(RuntimeError):
        _ = emulator.endpoint
    with pytest.raises(ValueError):
        CustomVisionEmulator(host="0.0.0.0")
