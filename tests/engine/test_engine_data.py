"""Loading, inspection, validation split and augmentation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_images import CLASSES, Samples

from mcv_local.engine import TrainConfig, data
from mcv_local.engine.train import resolve_config
from mcv_local.preprocess import decode

Factory = Callable[..., Samples]


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_greyscale_and_rgb_detection(image_factory: Factory, mode: str, channels: int) -> None:
    samples = image_factory("imgs", per_class=3, mode=mode)
    cfg = resolve_config(TrainConfig(task="classification", classes=CLASSES, train=samples, val=samples[:1]))
    assert (cfg.backbone, cfg.image_size, cfg.channels) == ("small_cnn", 32, channels)
    assert cfg.batch_size == 8 and cfg.lr is not None and cfg.num_threads  # 9 images: smallest auto batch
    assert cfg.crop_padding == 2  # small dataset: random crops on by default


def test_auto_picks_lite0_for_large_images_and_rounds_small_sizes(image_factory: Factory) -> None:
    large = image_factory("large", per_class=1, size=96, mode="L")
    cfg = resolve_config(TrainConfig(task="classification", classes=CLASSES, train=large, val=large[:1]))
    assert (cfg.backbone, cfg.image_size, cfg.channels) == ("efficientnet_lite0", 224, 3)
    odd = image_factory("odd", per_class=1, size=30)
    assert resolve_config(TrainConfig(task="classification", classes=CLASSES, train=odd, val=odd)).image_size == 32


def test_split_validation_is_seeded_and_stratified() -> None:
    samples = [(f"{i}.png", [i % 3]) for i in range(90)] + [("lonely.png", [3])]
    train, val = data.split_validation(samples, seed=1)
    assert len(val) == 9 and len(train) == 82
    assert sorted(labels[0] for _, labels in val) == [0] * 3 + [1] * 3 + [2] * 3
    assert ("lonely.png", [3]) in train
    assert data.split_validation(samples, seed=1) == (train, val)
    assert data.split_validation(samples, seed=2) != (train, val)
    tiny_train, tiny_val = data.split_validation([("a", [0]), ("b", [1])], seed=0)
    assert len(tiny_val) == 1 and len(tiny_train) == 1


def test_decode_all_pool_matches_serial(image_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = image_factory("imgs", per_class=8, mode="L")
    paths = [path for path, _ in samples]
    serial = data.decode_all(paths, 28, 1, workers=1)
    monkeypatch.setattr(data, "POOL_MIN_IMAGES", 4)
    monkeypatch.setattr(data, "CHUNK", 5)
    pooled = data.decode_all(paths, 28, 1, workers=2)
    assert serial.dtype == torch.uint8 and serial.shape == (24, 28, 28, 1)
    assert torch.equal(serial, pooled)
    assert np.array_equal(serial[3].numpy(), decode(paths[3], 28, 1))


def test_unreadable_image_is_an_engine_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(data.EngineError, match=r"bad\.png"):
        data.decode_all([str(bad)], 28, 1, workers=1)


def test_labels_and_augmentation() -> None:
    samples = [("a", [2]), ("b", [0, 1]), ("c", [])]
    assert data.encode_labels(samples[:1], "classification", 3).tolist() == [2]
    assert data.encode_labels(samples, "multilabel", 3).tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]
    x = torch.randint(0, 256, (16, 28, 28, 1), dtype=torch.uint8)
    out = data.augment_batch(x, data.generator(0), pad=2, hflip=True)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert torch.equal(out, data.augment_batch(x, data.generator(0), pad=2, hflip=True))
    assert not torch.equal(out, x)
    # a zero-padded shift keeps most pixels of each image
    same = data.augment_batch(x, data.generator(0), pad=0, hflip=False)
    assert torch.equal(same, x)
    image = torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8)
    crop = data.random_resized_crop(image, data.generator(1))
    assert crop.shape == image.shape and crop.dtype == torch.uint8


def test_in_memory_batches_resume_mid_epoch() -> None:
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 4, 4, 1).contiguous()
    labels = torch.arange(50)
    batches = data.InMemoryBatches(images, labels, 8, train=True, augment=False, hflip=False, seed=3)
    assert len(batches) == 6
    full = [y.tolist() for _, y in batches.epoch(2)]
    assert [y.tolist() for _, y in batches.epoch(2, start=4)] == full[4:]
    assert full != [y.tolist() for _, y in batches.epoch(3)]
