"""The Custom Vision provider's settings, domains, limits and batching: pure functions, no service."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcv_customvision.domains import DEFAULT_DOMAIN, domains, pick
from mcv_customvision.limits import LIMITS, capabilities_limits, citation
from mcv_customvision.settings import Options, on_loopback
from mcv_customvision.uploads import plan_batches
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import ConfigError

ARM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.CognitiveServices/accounts/pred"
)


def test_defaults_and_quickstart_variables() -> None:
    env = {
        "VISION_TRAINING_ENDPOINT": "https://cv.cognitiveservices.azure.com/",
        "VISION_TRAINING_KEY": "k1",
        "VISION_PREDICTION_KEY": "k2",
        "VISION_PREDICTION_RESOURCE_ID": ARM,
    }
    options = Options.parse({}, environ=env)
    assert options.training_endpoint == "https://cv.cognitiveservices.azure.com"
    assert options.prediction_endpoint == options.training_endpoint  # defaults to the training resource
    assert (options.training_key, options.prediction_key) == ("k1", "k2")
    assert options.domain == DEFAULT_DOMAIN and options.training_type == "Regular" and options.tier == "S0"
    assert options.training_problems() == [] and options.prediction_problems() == []
    # a setting wins over the quickstart variable
    assert Options.parse({"training_key": "mine"}, environ=env).training_key == "mine"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"training_endpoint": "cv.cognitiveservices.azure.com"}, "is not an endpoint URL"),
        ({"training_endpoint": "https://x.example/customvision/v3.4-preview/training"}, "has a path"),
        ({"prediction_resource_id": "00000000-0000-0000-0000-000000000000"}, "not the subscription id"),
        ({"training_type": "Fast"}, "Regular or Advanced"),
        ({"training_type": "advanced"}, "budget_hours of at least 1"),
        ({"budget_hours": "two"}, "whole number"),
        ({"tier": "S1"}, "F0 or S0"),
        ({"threshold": "1.5"}, "from 0 to 1"),
        ({"publish_name": "has space"}, "publish_name"),
        ({"store_images": "maybe"}, "true or false"),
        ({"max_retries": "-1"}, "max_retries"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(config: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Options.parse(config, environ={})


def test_missing_keys_are_reported_not_printed() -> None:
    options = Options.parse({"training_endpoint": "https://a.example"}, environ={})
    assert "training_key is not set" in options.training_problems()[0]
    assert any("prediction_resource_id" in p for p in options.prediction_problems())
    secret = Options.parse({"training_endpoint": "https://a.example", "training_key": "s3cr3t"}, environ={})
    assert all("s3cr3t" not in p for p in secret.training_problems() + secret.prediction_problems())


def test_loopback_is_emulated() -> None:
    assert on_loopback("http://127.0.0.1:8080") and not on_loopback("https://cv.cognitiveservices.azure.com")


def test_domains_by_name_and_type() -> None:
    assert pick("general (COMPACT)", "classification")["type"] == "Classification"
    detection = pick("General (compact)", "detection")
    assert detection["type"] == "ObjectDetection" and detection["exportable"]
    assert not pick("General", "detection")["exportable"]
    with pytest.raises(ConfigError, match="Logo"):  # the message lists the names of the type
        pick("Food", "detection")
    assert all(d.exportable == ("compact" in d.name) for d in domains())


def test_limits_as_data() -> None:
    assert (LIMITS.max_images_per_batch, LIMITS.max_tags_per_batch, LIMITS.max_regions_per_image) == (64, 20, 300)
    assert LIMITS.min_images_per_tag("detection") == 15 and LIMITS.min_images_per_tag("multilabel") == 5
    assert LIMITS.tier("f0").projects == 2 and LIMITS.tier("S0").tags == 500
    f0 = capabilities_limits("F0")
    assert (f0.max_images, f0.max_labels, f0.max_image_bytes) == (5000, 50, 6 * 1024 * 1024)
    assert "6 MB" in citation("max_image_bytes")
    with pytest.raises(ConfigError):
        LIMITS.tier("P1")


def _dataset(root: Path, images: int, classes: int, detection: bool = False) -> Dataset:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    records = []
    for n in range(images):
        name = f"{n:04d}.png"
        Image.new("RGB", (32, 32), (n % 255, 0, 0)).save(root / name)
        if detection:
            box = BoxAnnotation(n % classes, 1.0, 1.0, 20.0, 20.0)
            records.append(ImageRecord(name, boxes=(box,), width=32, height=32))
        else:
            records.append(ImageRecord(name, labels=(n % classes,), width=32, height=32))
    names = [f"c{i}" for i in range(classes)]
    return Dataset(root=root, classes=names, images=records, task="detection" if detection else "classification")


def test_batches_respect_count_tags_and_bytes(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "a", images=150, classes=30)
    batches = plan_batches(dataset)
    assert sum(len(b) for b in batches) == 150
    for batch in batches:
        assert len(batch) <= 64
        assert len({t for e in batch for t in e["tag_names"]}) <= 20
    small = plan_batches(dataset, max_batch_bytes=400)  # a few tiny PNGs per batch
    assert len(small) > len(batches)
    boxes = plan_batches(_dataset(tmp_path / "b", images=10, classes=2, detection=True))
    region = boxes[0][0]["regions"][0]
    assert 0 < region["width"] <= 1 and region["left"] == pytest.approx(1 / 32, abs=1e-6)
