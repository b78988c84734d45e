"""Pascal VOC XML: round trips, the 1-based coordinate convention, class order, splits, unsafe XML, errors."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support import worker_children

from multicloud_cv.datasets import voc
from multicloud_cv.datasets.formats import read_dataset, write_dataset
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord
from multicloud_cv.errors import DatasetError
from multicloud_cv.testing.datasets import assert_same_dataset, make_detection_dataset

OBJECT = "<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>{box}</bndbox></object>"
BOX = "<xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>"


@pytest.fixture
def source(tmp_path: Path) -> Dataset:
    return make_detection_dataset(tmp_path / "src")


def annotation(filename: str = "a.jpg", objects: str = "", size: str | None = None) -> str:
    size = "<size><width>40</width><height>30</height><depth>3</depth></size>" if size is None else size
    return f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>{size}{objects}</annotation>"


def voc_dir(root: Path, files: dict[str, str], sets: dict[str, str] | None = None) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem, text in files.items():
        (root / "Annotations" / f"{stem}.xml").write_text(text)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(b"x")
    for name, text in (sets or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / name).write_text(text)
    return root


def obj(name: str, *box: float | str, difficult: int = 0) -> str:
    return OBJECT.format(name=name, difficult=difficult, box=BOX.format(*box))


@pytest.mark.parametrize("copy_images", [True, False])
def test_round_trip_keeps_everything(source: Dataset, tmp_path: Path, copy_images: bool) -> None:
    out = write_dataset(source, tmp_path / "out", "voc", copy_images=copy_images)
    back = read_dataset(out, "voc")
    assert back.source_format == "voc" and back.task == "detection"
    assert back.classes == ["square", "circle", "triangle"]  # not sorted: labelmap.txt keeps the order
    assert_same_dataset(source, back, box_tolerance=0)
    assert all(back.absolute(image).is_file() for image in back.images)
    assert sorted(p.name for p in (out / "ImageSets" / "Main").iterdir()) == ["test.txt", "train.txt", "val.txt"]
    assert (out / "ImageSets" / "Main" / "val.txt").read_text().split() == [
        Path(i.path).stem for i in source.split("validation")
    ]
    if copy_images:
        assert all(i.path.startswith("JPEGImages/") and i.path.endswith(".png") for i in back.images)
    else:
        assert not any((out / "JPEGImages").iterdir())
        assert all(i.path.startswith(str(source.root)) for i in back.images)


def test_one_based_coordinates_written_and_read(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    box = BoxAnnotation(0, 0.0, 0.0, 10.0, 5.0)  # covers 0-based pixels 0..9 x 0..4
    frac = BoxAnnotation(0, 0.1, 2.25, 7.5, 8.125)
    data = Dataset(tmp_path, ["cat"], [ImageRecord("a.png", (), (box, frac), "train", 40, 30)], task="detection")
    out = write_dataset(data, tmp_path / "out", "voc")
    text = (out / "Annotations" / "a.xml").read_text()
    assert "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>5</ymax>" in text
    assert "<xmin>1.1</xmin><ymin>3.25</ymin><xmax>7.5</xmax><ymax>8.125</ymax>" in text
    assert read_dataset(out, "voc").images[0].boxes == (box, frac)  # exact, fractions included
    as_is = read_dataset(out, "voc", coordinates="as-is").images[0].boxes
    assert as_is[0] == BoxAnnotation(0, 1.0, 1.0, 10.0, 5.0)
    out2 = write_dataset(data, tmp_path / "out2", "voc", coordinates="as-is")
    assert "<xmin>0</xmin><ymin>0</ymin><xmax>10</xmax>" in (out2 / "Annotations" / "a.xml").read_text()
    assert read_dataset(out2, "voc", coordinates="as-is").images[0].boxes == (box, frac)
    with pytest.raises(DatasetError, match="unknown coordinates"):
        voc.read(out, coordinates="zero")


def test_reads_a_hand_written_voc_dataset(tmp_path: Path) -> None:
    files = {
        "000001": annotation("000001.jpg", obj("dog", 48, 240, 195, 371) + obj("person", 8, 12, 352, 498, difficult=1)),
        "000002": annotation("000002.jpg", obj("train", 139, 200, 207, 301)),
        "000003": annotation("000003.jpg"),
    }
    root = voc_dir(tmp_path / "VOC2007", files, {"train.txt": "000001\n", "val.txt": "000002\n\n"})
    data = voc.read(root)
    assert data.classes == ["dog", "person", "train"]  # no labelmap.txt: sorted
    first, second, third = data.images
    assert first.path == "JPEGImages/000001.jpg" and (first.width, first.height) == (40, 30)
    assert first.boxes == (BoxAnnotation(0, 47, 239, 195, 371), BoxAnnotation(1, 7, 11, 352, 498))
    assert [i.split for i in data.images] == ["train", "validation", None]
    assert third.boxes == () and second.boxes[0].label == 2
    assert data.notes == ["1 difficult box(es) kept as ordinary boxes"]
    assert voc.detect(root) and not voc.detect(tmp_path)


def test_trainval_only_means_train(tmp_path: Path) -> None:
    root = voc_dir(tmp_path / "v", {"a": annotation(), "b": annotation()}, {"trainval.txt": "a\n", "test.txt": "b\n"})
    assert [i.split for i in voc.read(root).images] == ["train", "test"]


def test_labelmap_order_and_background(tmp_path: Path) -> None:
    files = {"a": annotation(objects=obj("zebra", 1, 1, 5, 5) + obj("ant", 2, 2, 6, 6))}
    root = voc_dir(tmp_path / "v", files)
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nzebra:128,0,0::\nbee:0,128,0::\nant\n"
    )
    data = voc.read(root)
    assert data.classes == ["zebra", "bee", "ant"]  # unused background dropped, unused bee kept
    assert [b.label for b in data.images[0].boxes] == [0, 2]
    (root / "labelmap.txt").write_text("zebra:::\n")
    with pytest.raises(DatasetError, match=r"does not list class.*ant"):
        voc.read(root)
    (root / "labelmap.txt").write_text("zebra:::\nzebra:::\n")
    with pytest.raises(DatasetError, match=r"labelmap\.txt:2: label 'zebra' is listed twice"):
        voc.read(root)


def test_written_labelmap_is_datumaro_style(source: Dataset, tmp_path: Path) -> None:
    out = write_dataset(source, tmp_path / "out", "voc")
    lines = (out / "labelmap.txt").read_text().splitlines()
    assert lines == ["# label:color_rgb:parts:actions", "square:128,0,0::", "circle:0,128,0::", "triangle:128,128,0::"]
    assert voc.voc_color(0) == (0, 0, 0) and voc.voc_color(15) == (192, 128, 128)  # VOC's "person"


def test_unique_stems_and_original_extensions(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
    for name in ("x/a.png", "y/a.jpg", "y/A.png", "x/b"):
        (tmp_path / name).write_bytes(name.encode())
    images = [ImageRecord(p, (), (BoxAnnotation(0, 1, 1, 3, 3),), "train", 4, 4)
              for p in ("x/a.png", "y/a.jpg", "y/A.png", "x/b")]  # fmt: skip
    data = Dataset(tmp_path, ["cat"], images, task="detection")
    out = write_dataset(data, tmp_path / "out", "voc")
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["A-2.png", "a-1.jpg", "a.png", "b"]
    assert (out / "ImageSets" / "Main" / "train.txt").read_text().split() == ["a", "a-1", "A-2", "b"]
    back = read_dataset(out, "voc")
    assert_same_dataset(data, back)
    assert (out / "JPEGImages" / "a-1.jpg").read_bytes() == b"y/a.jpg"


def test_xml_bombs_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
        "<annotation><filename>&lol2;</filename></annotation>"
    )
    root = voc_dir(tmp_path / "v", {"a": bomb})
    with pytest.raises(DatasetError, match=r"a\.xml: DOCTYPE or ENTITY declarations are refused"):
        voc.read(root)
    external = '<!ENTITY x SYSTEM "file:///etc/passwd">' + annotation()
    (root / "Annotations" / "a.xml").write_text(external)
    with pytest.raises(DatasetError, match="refused"):
        voc.read(root)


@pytest.mark.parametrize(
    ("text", "element"),
    [
        (annotation(size=""), "<size>"),
        (annotation(size="<size><height>3</height></size>"), "<size/width>"),
        (annotation(size="<size><width>4</width><height>x</height></size>"), "<size/height> is 'x'"),
        (annotation(objects="<object><bndbox>" + BOX.format(1, 1, 2, 2) + "</bndbox></object>"), "<object/name>"),
        (annotation(objects="<object><name>cat</name></object>"), "<object/bndbox>"),
        (annotation(objects=obj("cat", 1, 1, "", 2)), "<object/bndbox/xmax>"),
        (annotation(objects=obj("cat", 1, "one", 2, 2)), "<object/bndbox/ymin> is 'one'"),
        (annotation(objects=obj("cat", 5, 1, 2, 2)), "bndbox max is below min"),
        (annotation(objects=obj("cat", 1, 1, "nan", 2)), "bndbox max is below min, or not a number"),
        ("<annotation><filename>a.jpg</filename>", "not well-formed XML"),
    ],
)
def test_bad_xml_names_file_and_element(tmp_path: Path, text: str, element: str) -> None:
    root = voc_dir(tmp_path / "v", {"ok": annotation(), "bad": text})
    with pytest.raises(DatasetError) as caught:
        voc.read(root)
    assert str(root / "Annotations" / "bad.xml") in str(caught.value)
    assert element in str(caught.value)


def test_bad_image_sets(tmp_path: Path) -> None:
    root = voc_dir(tmp_path / "v", {"a": annotation()}, {"train.txt": "a\nghost\n"})
    with pytest.raises(DatasetError, match=r"train\.txt:2: 'ghost' has no Annotations/ghost\.xml"):
        voc.read(root)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("a\n")
    with pytest.raises(DatasetError, match=r"test\.txt:1: 'a' is also listed in .*train\.txt"):
        voc.read(root)
    with pytest.raises(DatasetError, match="no Annotations/ folder"):
        voc.read(tmp_path)


def test_path_element_used_when_jpegimages_lacks_the_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "pictures" / "shot.jpg"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"x")
    text = annotation("shot.jpg").replace("</filename>", f"</filename><path>{elsewhere}</path>")
    root = voc_dir(tmp_path / "v", {"kept": annotation("kept.jpg"), "shot": text})
    (root / "JPEGImages" / "shot.jpg").unlink()
    data = voc.read(root)
    assert [i.path for i in data.images] == ["JPEGImages/kept.jpg", str(elsewhere)]


def test_missing_filename_guessed_from_jpegimages(tmp_path: Path) -> None:
    root = voc_dir(tmp_path / "v", {"a": annotation().replace("<filename>a.jpg</filename>", "")})
    (root / "JPEGImages" / "a.jpg").rename(root / "JPEGImages" / "a.png")
    assert voc.read(root).images[0].path == "JPEGImages/a.png"
    (root / "Annotations" / "a.xml").write_text(annotation("a"))  # a bare stem
    assert voc.read(root).images[0].path == "JPEGImages/a.png"


def test_writer_refuses_what_voc_cannot_hold(source: Dataset, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="detection"):
        voc.write(replace(source, task="classification"), tmp_path / "a")
    with pytest.raises(DatasetError, match="cannot be written to labelmap"):
        voc.write(replace(source, classes=["a:b", "c", "d"]), tmp_path / "b")
    with pytest.raises(DatasetError, match="holdout"):
        voc.write(replace(source, images=[replace(source.images[1], split="holdout")]), tmp_path / "c")
    for n, box in enumerate(
        [BoxAnnotation(3, 0, 0, 1, 1), BoxAnnotation(0, 2, 0, 1, 1), BoxAnnotation(0, 0, 0, 1, math.nan)]
    ):
        bad = replace(source, images=[replace(source.images[1], boxes=(box,))])
        with pytest.raises(DatasetError, match="box label 3" if n == 0 else "not finite with min <= max"):
            voc.write(bad, tmp_path / f"e{n}", copy_images=False)
    missing = replace(source, images=[ImageRecord("images/nope.png", split="train", width=4, height=4)])
    with pytest.raises(DatasetError, match="does not exist"):
        write_dataset(missing, tmp_path / "d", "voc")
    assert not (tmp_path / "d").exists()


def test_names_are_escaped(tmp_path: Path) -> None:
    (tmp_path / "a&b.png").write_bytes(b"x")
    image = ImageRecord("a&b.png", (), (BoxAnnotation(0, 1, 1, 3, 3),), None, 4, 4)
    data = Dataset(tmp_path, ["fish & chips <3"], [image], task="detection")
    back = read_dataset(write_dataset(data, tmp_path / "out", "voc"), "voc")
    assert back.classes == data.classes and back.images[0].path == "JPEGImages/a&b.png"
    assert back.images[0].split is None


def test_coco_to_voc_to_coco(source: Dataset, tmp_path: Path) -> None:
    via_coco = read_dataset(write_dataset(source, tmp_path / "coco", "coco"), "coco")
    via_voc = read_dataset(write_dataset(via_coco, tmp_path / "voc", "voc"), "voc")
    again = read_dataset(write_dataset(via_voc, tmp_path / "coco2", "coco"), "coco")
    assert_same_dataset(source, again, box_tolerance=0)


def test_worker_processes_read_the_same_dataset(source: Dataset, tmp_path: Path) -> None:
    out = write_dataset(source, tmp_path / "out", "voc")
    alone = voc.read(out, processes=1)
    assert voc.read(out, processes=2) == alone  # same images, boxes, splits and classes, in the same order
    assert voc._processes(voc.PROCESSES_FROM - 1, None) == 1  # small sets never pay a worker's start
    assert 1 <= voc._processes(voc.PROCESSES_FROM, None) <= voc.MAX_PROCESSES
    with pytest.raises(DatasetError, match="processes 0 must be at least 1"):
        voc.read(out, processes=0)


def test_a_bad_file_parsed_in_a_worker_names_itself(tmp_path: Path) -> None:
    files = {f"{n:03d}": annotation(objects=obj("cat", 1, 1, 5, 5)) for n in range(600)}
    files["450"] = annotation(objects=obj("cat", 1, "one", 2, 2))
    root = voc_dir(tmp_path / "v", files)
    with pytest.raises(DatasetError, match=r"450\.xml: <object/bndbox/ymin> is 'one'"):
        voc.read(root, processes=2)
    if sys.platform == "linux":
        assert worker_children() == []  # stopped when the error left read(), not when its traceback is freed
