"""Fitting images to Rekognition Custom Labels' limits: real files through Pillow, boxes scaled with the pixels."""

from __future__ import annotations

import io
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from mcv_rekognition import images as rk_images
from mcv_rekognition.images import fit_image_bytes, fit_images, target_size
from mcv_rekognition.limits import capabilities_limits, rekognition_limits
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.datasets.preflight import Severity, check_files
from multicloud_cv.errors import DatasetError, InvalidImage


def _save(path: Path, size: tuple[int, int], fmt: str, mode: str = "RGB", noise: bool = False) -> Path:
    if noise:
        rng = random.Random(7)
        image = Image.frombytes(mode, size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * len(mode))))
    else:
        image = Image.new(mode, size, 128 if mode in ("L", "P") else (200, 60, 40, 255)[: len(mode)])
    image.save(path, format=fmt)
    return path


def _dataset(root: Path, *records: ImageRecord, task: str = "classification") -> Dataset:
    return Dataset(root, ["a", "b"], list(records), task=task)


def test_compliant_images_are_left_alone(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", (64, 300), "PNG")
    _save(tmp_path / "b.jpg", (4096, 205), "JPEG")
    _save(tmp_path / "grey.png", (100, 100), "PNG", mode="L")
    dataset = _dataset(tmp_path, ImageRecord("a.png", (0,)), ImageRecord("b.jpg", (1,)), ImageRecord("grey.png", (1,)))
    work = tmp_path / "fitted"
    fitted = fit_images(dataset, work)
    assert [image.path for image in fitted.images] == ["a.png", "b.jpg", "grey.png"]
    assert [(image.width, image.height) for image in fitted.images] == [(64, 300), (4096, 205), (100, 100)]
    assert not work.exists() or not any(work.iterdir())
    assert fitted.root == dataset.root and fitted.classes == dataset.classes


def test_small_images_are_upscaled_with_their_boxes(tmp_path: Path) -> None:
    """Fashion-MNIST's 28 px images: the case cloud-apis.md section 8 names."""
    _save(tmp_path / "shirt.png", (28, 28), "PNG", mode="L")
    _save(tmp_path / "strip.png", (100, 30), "PNG")
    box = BoxAnnotation(1, 2.0, 3.0, 14.0, 21.0)
    dataset = _dataset(
        tmp_path,
        ImageRecord("shirt.png", (), (box,), "train", 28, 28),
        ImageRecord("strip.png", (), (BoxAnnotation(0, 10, 0, 50, 30),), "test"),
        task="detection",
    )
    fitted = fit_images(dataset, tmp_path / "work")
    shirt, strip = fitted.images
    assert Path(shirt.path).is_absolute() and Path(shirt.path).parent == (tmp_path / "work").resolve()
    with Image.open(shirt.path) as opened:
        assert (opened.format, opened.size, opened.mode) == ("PNG", (64, 64), "L")
    assert (shirt.width, shirt.height, shirt.split) == (64, 64, "train")
    scale = 64 / 28
    assert shirt.boxes == (BoxAnnotation(1, 2 * scale, 3 * scale, 14 * scale, 21 * scale),)
    assert (strip.width, strip.height) == (214, 64)  # 100 * 64/30 = 213.3, rounded up to keep the bound
    [strip_box] = strip.boxes
    assert strip_box.x_max == pytest.approx(50 * 214 / 100) and strip_box.y_max == pytest.approx(64)
    assert check_files(fitted, capabilities_limits()) == []


def test_large_images_are_downscaled_and_stay_jpeg(tmp_path: Path) -> None:
    _save(tmp_path / "big.jpg", (5000, 3000), "JPEG")
    box = BoxAnnotation(0, 100, 200, 4900, 2900)
    fitted = fit_images(_dataset(tmp_path, ImageRecord("big.jpg", (0,), (box,))), tmp_path / "work")
    [image] = fitted.images
    assert image.path.endswith(".jpg") and (image.width, image.height) == (4096, 2457)
    with Image.open(image.path) as opened:
        assert (opened.format, opened.size) == ("JPEG", (4096, 2457))
    [scaled] = image.boxes
    assert scaled.x_max == pytest.approx(4900 * 4096 / 5000) and scaled.y_max == pytest.approx(2900 * 2457 / 3000)


@pytest.mark.parametrize(
    ("name", "fmt", "mode", "out_format", "out_mode"),
    [
        ("pic.bmp", "BMP", "RGB", "PNG", "RGB"),
        ("anim.gif", "GIF", "P", "PNG", "RGB"),
        ("photo.webp", "WEBP", "RGB", "PNG", "RGB"),
        ("scan.tif", "TIFF", "RGB", "PNG", "RGB"),
        ("print.jpg", "JPEG", "CMYK", "JPEG", "RGB"),
    ],
)
def test_other_formats_and_cmyk_are_converted(
    tmp_path: Path, name: str, fmt: str, mode: str, out_format: str, out_mode: str
) -> None:
    _save(tmp_path / name, (120, 90), fmt, mode=mode)
    fitted = fit_images(_dataset(tmp_path, ImageRecord(name, (0,))), tmp_path / "work")
    [image] = fitted.images
    assert image.path != name and (image.width, image.height) == (120, 90)
    with Image.open(image.path) as opened:
        assert (opened.format, opened.mode, opened.size) == (out_format, out_mode, (120, 90))
    assert Path(image.path).suffix == (".png" if out_format == "PNG" else ".jpg")


def test_aspect_ratio_over_20_is_refused_naming_the_image(tmp_path: Path) -> None:
    _save(tmp_path / "ok.png", (80, 80), "PNG")
    _save(tmp_path / "banner.png", (1344, 64), "PNG")  # 21:1
    _save(tmp_path / "pole.png", (10, 300), "PNG")  # 30:1, also too small: still refused, not resized
    dataset = _dataset(tmp_path, *(ImageRecord(n, (0,)) for n in ("ok.png", "banner.png", "pole.png")))
    with pytest.raises(DatasetError) as caught:
        fit_images(dataset, tmp_path / "work")
    message = str(caught.value)
    assert "\n" not in message and "banner.png" in message and "21.0:1" in message and "at most 20:1" in message
    assert "(1 more image(s) cannot be fitted)" in message


def test_exactly_20_to_1_is_accepted_and_upscaled(tmp_path: Path) -> None:
    _save(tmp_path / "line.png", (20, 1), "PNG")
    [image] = fit_images(_dataset(tmp_path, ImageRecord("line.png", (0,))), tmp_path / "work").images
    assert (image.width, image.height) == (1280, 64)


def test_unreadable_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(DatasetError, match=r"junk\.png: cannot be fitted"):
        fit_images(_dataset(tmp_path, ImageRecord("junk.png", (0,))), tmp_path / "work")
    with pytest.raises(DatasetError, match=r"gone\.png: cannot read the image"):
        fit_images(_dataset(tmp_path, ImageRecord("gone.png", (0,))), tmp_path / "work")


def test_a_record_size_that_disagrees_with_the_file_is_refused_before_scaling(tmp_path: Path) -> None:
    _save(tmp_path / "small.png", (32, 32), "PNG")
    record = ImageRecord("small.png", (), (BoxAnnotation(0, 1, 1, 20, 20),), width=40, height=40)
    with pytest.raises(DatasetError, match=r"says 40x40 but the file is 32x32"):
        fit_images(_dataset(tmp_path, record, task="detection"), tmp_path / "work")


def test_remote_images_are_not_touched(tmp_path: Path) -> None:
    record = ImageRecord("s3://bucket/images/a.png", (0,))
    assert fit_images(_dataset(tmp_path, record), tmp_path / "work").images == [record]


def test_outputs_are_reused_and_written_atomically(tmp_path: Path) -> None:
    _save(tmp_path / "tiny.png", (30, 40), "PNG")
    dataset = _dataset(tmp_path, ImageRecord("tiny.png", (0,)))
    first = fit_images(dataset, tmp_path / "work").images[0]
    stamp = os.stat(first.path).st_mtime_ns
    second = fit_images(dataset, tmp_path / "work").images[0]
    assert second == first and os.stat(second.path).st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [Path(first.path).name]
    _save(tmp_path / "tiny.png", (31, 40), "PNG")  # new content: a new output, the old one untouched
    third = fit_images(dataset, tmp_path / "work").images[0]
    assert third.path != first.path and (third.width, third.height) == (64, 83)


def test_files_over_the_byte_limit_are_recompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_limit = replace(rekognition_limits(), max_image_bytes=40_000)
    monkeypatch.setattr(rk_images, "rekognition_limits", lambda: small_limit)
    _save(tmp_path / "noise.png", (200, 200), "PNG", noise=True)  # ~120 kB of incompressible pixels
    assert (tmp_path / "noise.png").stat().st_size > 40_000
    [image] = fit_images(_dataset(tmp_path, ImageRecord("noise.png", (0,))), tmp_path / "work").images
    assert Path(image.path).stat().st_size <= 40_000
    with Image.open(image.path) as opened:
        assert opened.format == "JPEG" and opened.size == (image.width, image.height)
        assert min(opened.size) >= 64


def test_target_size_keeps_the_aspect_ratio() -> None:
    assert target_size(100, 100) == (100, 100)
    assert target_size(28, 28) == (64, 64)
    assert target_size(8000, 400) == (4096, 204)
    assert target_size(64, 1280) == (64, 1280)
    assert target_size(4097, 4097) == (4096, 4096)


def test_prediction_payloads_are_fitted_or_passed_through(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (100, 80), "white").save(buffer, format="JPEG")
    payload = buffer.getvalue()
    assert fit_image_bytes(payload) is payload
    small = io.BytesIO()
    Image.new("L", (28, 28), 10).save(small, format="PNG")
    with Image.open(io.BytesIO(fit_image_bytes(small.getvalue()))) as opened:
        assert (opened.format, opened.size) == ("PNG", (64, 64))
    noisy = _save(tmp_path / "noisy.png", (300, 300), "PNG", noise=True).read_bytes()
    fitted = fit_image_bytes(noisy, max_bytes=50_000)
    assert len(fitted) <= 50_000 and Image.open(io.BytesIO(fitted)).format == "JPEG"
    with pytest.raises(InvalidImage, match="aspect ratio over 20:1"):
        wide = io.BytesIO()
        Image.new("RGB", (2100, 100)).save(wide, format="PNG")
        fit_image_bytes(wide.getvalue())
    with pytest.raises(InvalidImage):
        fit_image_bytes(b"\x00\x01 not an image")


def test_fitted_dataset_passes_the_core_file_checks(tmp_path: Path) -> None:
    names = []
    for index, (size, fmt) in enumerate([((28, 28), "PNG"), ((50, 900), "BMP"), ((5000, 300), "JPEG")]):
        names.append(_save(tmp_path / f"img{index}.{fmt.lower()}", size, fmt).name)
    dataset = _dataset(tmp_path, *(ImageRecord(name, (i % 2,)) for i, name in enumerate(names)))
    before = {f.code for f in check_files(dataset, capabilities_limits()) if f.severity is Severity.ERROR}
    assert before == {"image-too-small", "image-format", "image-too-big"}
    assert check_files(fit_images(dataset, tmp_path / "work"), capabilities_limits()) == []
