"""Pascal VOC XML (object detection): ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``.

Layout::

    Annotations/<stem>.xml        one per image: filename, size, object/name, object/bndbox
    JPEGImages/<stem>.<ext>       the images (any type; the original extension is kept)
    ImageSets/Main/train.txt      one stem a line; val.txt is our "validation", test.txt "test"
    labelmap.txt                  class order, datumaro/CVAT style "name:r,g,b:parts:actions"

Every ``Annotations/*.xml`` is an image; one listed in none of ``train.txt``, ``val.txt`` and
``test.txt`` is unassigned (``trainval.txt`` counts as ``train`` only when neither
``train.txt`` nor ``val.txt`` exists). Class order is ``labelmap.txt``'s when present (an
unused ``background`` entry, which datumaro writes first, is dropped), else class names sorted.
``difficult`` and ``truncated`` boxes are kept as ordinary boxes (the flags are not carried;
``Dataset.notes`` counts the difficult ones); ``<part>`` and ``<actions>`` are ignored.

Coordinates: the original VOC annotations are 1-based, with ``xmax``/``ymax`` the last pixel
inside the box, so a box covering 0-based pixels ``x0 .. x1-1`` is written ``xmin=x0+1,
xmax=x1``. With the default ``coordinates="voc-one-based"`` the reader subtracts 1 from
``xmin``/``ymin`` and keeps ``xmax``/``ymax`` (detectron2's reading, and datumaro's
``--coordinate-mode voc-one-based``), turning them into the canonical ``x_min`` inclusive /
``x_max`` exclusive pixel edges, and the writer adds the 1 back. Numbers are written with 12
significant digits (whole numbers without a decimal point; at least 7 decimals under
100,000 px) and the reader rounds ``xmin - 1`` to the same digits, so a round trip gives
back the same numbers: exactly for whole numbers and any value of up to 12 digits. Pass
``coordinates="as-is"`` to both to take the numbers unchanged (datumaro's default
``dm-zero-based``, torchvision's ``VOCDetection``).

Images: the reader uses ``JPEGImages/<filename>``; when the XML also has a ``<path>``
(LabelImg writes one, and so does our writer with ``copy_images=False``) and that JPEGImages
file does not exist, the ``<path>`` is used instead. Reading never decodes an image; sizes
come from ``<size>`` (0 means unknown). The writer hard-links (or copies) each image into
``JPEGImages/`` under a unique stem; ``copy_images=False`` places nothing and writes each
image's absolute path (or URI) in ``<path>``, for a conversion whose output stays beside its
images ("save_media off").

Safety: the files are parsed with :mod:`xml.etree.ElementTree`, and a file containing a
``<!DOCTYPE`` or ``<!ENTITY`` declaration is refused before parsing (no entity expansion,
so no "billion laughs" bomb). Missing ``size``, ``width``/``height``, ``object/name``,
``bndbox`` or one of its coordinates is a :class:`DatasetError` naming the file and element.
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator
from pathlib import Path

from multicloud_cv.datasets.media import image_size, is_uri, link_or_copy
from multicloud_cv.datasets.model import BoxAnnotation, Dataset, ImageRecord, gc_paused
from multicloud_cv.errors import DatasetError
from multicloud_cv.workers import process_map, usable_cpus

log = logging.getLogger(__name__)

ANNOTATIONS_DIR = "Annotations"
IMAGES_DIR = "JPEGImages"
SETS_DIR = "ImageSets/Main"
LABELMAP = "labelmap.txt"
#: Our split name -> the VOC image-set file.
SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}
COORDINATES = ("voc-one-based", "as-is")
#: One file's objects: (class name, x_min, y_min, x_max, y_max) in canonical pixels.
Objects = list[tuple[str, float, float, float, float]]
#: One parsed file: filename, ``<path>`` (or None), width, height, objects, difficult count.
_Parsed = tuple[str, str | None, int | None, int | None, Objects, int]
#: From this many annotation files on, :func:`read` parses them in worker processes.
PROCESSES_FROM = 4000
#: At most this many parsing processes (past it the parent's unpickling and assembly dominate).
MAX_PROCESSES = 4
#: Files a worker parses per round trip.
PROCESS_CHUNK = 256


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as XML entities (xml.sax.saxutils would import urllib: 50 ms)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def detect(path: Path) -> bool:
    """A directory whose ``Annotations/`` holds at least one ``.xml`` file."""
    folder = path / ANNOTATIONS_DIR
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(entry.name.lower().endswith(".xml") for entry in entries)


def voc_color(index: int) -> tuple[int, int, int]:
    """The Pascal VOC palette colour of label ``index`` (0 is the background's black)."""
    r = g = b = 0
    for shift in range(8):
        r |= ((index >> 0) & 1) << (7 - shift)
        g |= ((index >> 1) & 1) << (7 - shift)
        b |= ((index >> 2) & 1) << (7 - shift)
        index >>= 3
    return r, g, b


def read_labelmap(path: Path) -> list[str]:
    """Class names of a datumaro/CVAT ``labelmap.txt`` (``name:color:parts:actions``; ``#`` comments)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name = text.split(":", 1)[0].strip()
        if not name:
            raise DatasetError(f"{path}:{number}: empty label name; lines are 'name:r,g,b:parts:actions'")
        if name in names:
            raise DatasetError(f"{path}:{number}: label '{name}' is listed twice")
        names.append(name)
    return names


def read(path: Path, coordinates: str = "voc-one-based", processes: int | None = None) -> Dataset:
    """Read a VOC directory (see the module docstring).

    The annotation files are parsed by ``processes`` processes, this one included: it parses
    chunks of files itself while ``processes - 1`` workers parse others
    (:func:`multicloud_cv.workers.process_map` with ``inline=True``; on 2 cores 10 % faster than
    two workers and an idle parent). ``None`` means one per usable core, up to
    :data:`MAX_PROCESSES`, from :data:`PROCESSES_FROM` files on, and this process alone below
    that (starting a worker costs about as much as parsing 2,000 files). The result is the
    same either way. Raises :class:`DatasetError` naming the file for malformed or unsafe
    XML, a missing required element, a class that ``labelmap.txt`` does not list, an image
    set naming a stem with no annotation file, or an image listed in two splits.
    """
    if processes is not None and processes < 1:
        raise DatasetError(f"processes {processes} must be at least 1")
    with gc_paused():
        return _read(Path(path), coordinates, processes)


def _processes(files: int, asked: int | None) -> int:
    if asked is not None:
        return min(asked, max(1, files))
    if files < PROCESSES_FROM:
        return 1
    return min(MAX_PROCESSES, usable_cpus())


def _read(root: Path, coordinates: str, asked: int | None) -> Dataset:
    if coordinates not in COORDINATES:
        raise DatasetError(f"unknown coordinates '{coordinates}'; use {' or '.join(COORDINATES)}")
    folder = root / ANNOTATIONS_DIR
    if not folder.is_dir():
        raise DatasetError(f"{root}: no {ANNOTATIONS_DIR}/ folder; is this a Pascal VOC dataset?")
    with os.scandir(folder) as entries:
        files = sorted(entry.name for entry in entries if entry.name.lower().endswith(".xml"))
    splits = _read_splits(root, {name[:-4] for name in files})
    shift = 1.0 if coordinates == "voc-one-based" else 0.0

    labelmap = root / LABELMAP
    declared = read_labelmap(labelmap) if labelmap.is_file() else None
    parsed: list[tuple[str, str, int | None, int | None, Objects]] = []
    used: set[str] = set()
    difficult = 0
    images_dir = root / IMAGES_DIR
    base = str(folder)
    tasks = ((os.path.join(base, name), shift) for name in files)
    processes = _processes(len(files), asked)
    results: Iterator[_Parsed]
    if processes > 1:
        results = process_map(_parse_task, tasks, processes=processes - 1, chunk_size=PROCESS_CHUNK, inline=True)
    else:
        results = itertools.starmap(_parse, tasks)
    try:
        for name, (filename, given, width, height, objects, hard) in zip(files, results, strict=True):
            difficult += hard
            for obj in objects:
                used.add(obj[0])
            image_path = f"{IMAGES_DIR}/{filename}"
            if given is not None and not (images_dir / filename).is_file():
                image_path = given
            parsed.append((name[:-4], image_path, width, height, objects))
    finally:
        if isinstance(results, Generator):  # the workers stop now, not when the traceback is freed
            results.close()

    if declared is None:
        classes = sorted(used)
    else:
        classes = [n for n in declared if not (n == "background" and n not in used)]
        missing = sorted(used - set(classes))
        if missing:
            raise DatasetError(
                f"{labelmap}: does not list class(es) {', '.join(missing)} used in {ANNOTATIONS_DIR}/; add them"
            )
    labels = {n: i for i, n in enumerate(classes)}
    box = BoxAnnotation
    images = []
    for stem, image_path, width, height, objects in parsed:
        boxes = tuple([box(labels[n], x0, y0, x1, y1) for n, x0, y0, x1, y1 in objects])  # no generator per image
        images.append(ImageRecord(image_path, (), boxes, splits.get(stem), width, height))
    notes = [f"{difficult} difficult box(es) kept as ordinary boxes"] if difficult else []
    return Dataset(root=root, classes=classes, images=images, task="detection", source_format="voc", notes=notes)


def _read_splits(root: Path, stems: set[str]) -> dict[str, str]:
    sets = root / SETS_DIR
    files = dict(SPLIT_FILES)
    if not (sets / "train.txt").is_file() and not (sets / "val.txt").is_file():
        files["train"] = "trainval.txt"
    split_of: dict[str, str] = {}
    where: dict[str, Path] = {}
    for split, name in files.items():
        file = sets / name
        if not file.is_file():
            continue
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {file}: {exc}") from exc
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            stem = parts[0]
            if stem not in stems:
                raise DatasetError(f"{file}:{number}: '{stem}' has no {ANNOTATIONS_DIR}/{stem}.xml")
            if split_of.get(stem, split) != split:
                raise DatasetError(f"{file}:{number}: '{stem}' is also listed in {where[stem]}; an image has one split")
            split_of[stem] = split
            where[stem] = file
    return split_of


def _text(parent: ET.Element, tag: str, file: str, where: str) -> str:
    node = parent.find(tag)
    if node is None or node.text is None or not node.text.strip():
        raise DatasetError(f"{file}: missing <{where}{tag}>")
    return node.text.strip()


def _number(parent: ET.Element, tag: str, file: str, where: str) -> float:
    text = _text(parent, tag, file, where)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{file}: <{where}{tag}> is '{text}', not a number") from None


def _explain_object(obj: ET.Element, file: str) -> None:
    """Raise the :class:`DatasetError` naming what is wrong with one ``<object>`` (the slow path)."""
    name = _text(obj, "name", file, "object/")
    bnd = obj.find("bndbox")
    if bnd is None:
        raise DatasetError(f"{file}: missing <object/bndbox> (object '{name}')")
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        _number(bnd, tag, file, "object/bndbox/")


def _parse_task(task: tuple[str, float]) -> _Parsed:
    """:func:`_parse` for :func:`~multicloud_cv.workers.process_map` (one argument, importable by name)."""
    return _parse(*task)


def _parse(file: str, shift: float) -> _Parsed:
    """One annotation file: filename, path, width, height, objects and how many are difficult.

    The fast path reads each element with ``findtext`` and lets a missing or bad value fail
    a conversion; only then are the elements looked at one by one to say which is wrong.
    """
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DatasetError(f"cannot read {file}: {exc}") from exc
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise DatasetError(f"{file}: DOCTYPE or ENTITY declarations are refused (an XML bomb guard); remove them")
    try:
        tree = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DatasetError(f"{file}: not well-formed XML ({exc})") from exc
    filename = (tree.findtext("filename") or "").strip()
    if "." not in filename:  # absent, or a bare stem ("000001"): the JPEGImages file of that stem
        filename = _guess_filename(file, filename or os.path.basename(file)[:-4])
    given = (tree.findtext("path") or "").strip() or None
    size = tree.find("size")
    if size is None:
        raise DatasetError(f"{file}: missing <size>")
    try:
        width = int(float(size.findtext("width")))  # type: ignore[arg-type]
        height = int(float(size.findtext("height")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        _number(size, "width", file, "size/")
        _number(size, "height", file, "size/")
        raise
    objects: Objects = []
    hard = 0
    for obj in tree.findall("object"):  # findall, not iterfind: a plain tag stays in C
        try:
            name = obj.findtext("name").strip()  # type: ignore[union-attr]
            bnd = obj.find("bndbox")
            x0 = float(bnd.findtext("xmin"))  # type: ignore[union-attr,arg-type]
            y0 = float(bnd.findtext("ymin"))  # type: ignore[union-attr,arg-type]
            x1 = float(bnd.findtext("xmax"))  # type: ignore[union-attr,arg-type]
            y1 = float(bnd.findtext("ymax"))  # type: ignore[union-attr,arg-type]
            if not name:
                raise ValueError(name)
        except (AttributeError, TypeError, ValueError):
            _explain_object(obj, file)
            raise
        if shift:
            # exact for whole numbers; a fraction gets the 1 taken off and is rounded to the 12
            # significant digits the writer keeps, so 0.1 -> "1.1" -> 0.1 again
            x0 = x0 - 1.0 if x0.is_integer() else float("%.12g" % (x0 - 1.0))
            y0 = y0 - 1.0 if y0.is_integer() else float("%.12g" % (y0 - 1.0))
        if not (x0 <= x1 and y0 <= y1):  # also false for a NaN
            raise DatasetError(f"{file}: object '{name}': bndbox max is below min, or not a number")
        if obj.findtext("difficult", "").strip() in ("1", "true"):
            hard += 1
        objects.append((name, x0, y0, x1, y1))
    return filename, given, width or None, height or None, objects, hard


def _guess_filename(file: str, stem: str) -> str:
    """The JPEGImages file for a missing or bare ``<filename>``: ``stem``, ``stem.*``, else ``stem.jpg``."""
    images = Path(file).parent.parent / IMAGES_DIR
    if (images / stem).is_file():
        return stem
    for candidate in sorted(images.glob(f"{glob.escape(stem)}.*")):
        return candidate.name
    return f"{stem}.jpg"


#: 12 significant digits: whole numbers without ".0", 0.1 + 1 as 1.1, no float noise (see the module docstring)
BNDBOX = "<bndbox><xmin>%.12g</xmin><ymin>%.12g</ymin><xmax>%.12g</xmax><ymax>%.12g</ymax></bndbox>"
OBJECT_FLAGS = "<pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def _write_bytes(path: str, data: bytes) -> None:
    """Write a small file with ``os.open``/``os.write``: no buffered file object, a third faster for 20,000 files."""
    fd = os.open(path, _CREATE, 0o666)
    try:
        written = os.write(fd, data)
        while written < len(data):
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _bad_box(image: ImageRecord, box: BoxAnnotation, count: int) -> DatasetError:
    if not 0 <= box.label < count:
        return DatasetError(f"{image.path}: box label {box.label} is not a class index (0..{count - 1})")
    return DatasetError(f"{image.path}: box {box} is not finite with min <= max; VOC cannot hold it")


def write(dataset: Dataset, dest: Path, copy_images: bool = True, coordinates: str = "voc-one-based") -> None:
    """Write ``dataset`` as Pascal VOC into ``dest`` (see the module docstring)."""
    dest = Path(dest)
    if dataset.task != "detection":
        raise DatasetError(f"Pascal VOC holds detection datasets, not {dataset.task}")
    if coordinates not in COORDINATES:
        raise DatasetError(f"unknown coordinates '{coordinates}'; use {' or '.join(COORDINATES)}")
    for name in dataset.classes:
        if any(char in name for char in ":\r\n") or name != name.strip() or not name:
            raise DatasetError(f"class name {name!r} cannot be written to {LABELMAP} (no ':', newline, edge spaces)")
    unknown = sorted({str(i.split) for i in dataset.images if i.split is not None and i.split not in SPLIT_FILES})
    if unknown:
        raise DatasetError(f"splits {', '.join(unknown)} have no VOC image set; use train, validation or test")
    shift = 1.0 if coordinates == "voc-one-based" else 0.0
    inf = math.inf
    annotations, images_dir, sets = dest / ANNOTATIONS_DIR, dest / IMAGES_DIR, dest / SETS_DIR
    xml_dir = str(annotations)
    for folder in (annotations, images_dir, sets):
        folder.mkdir(parents=True, exist_ok=True)
    names = [escape(name) for name in dataset.classes]
    root = str(dataset.root)  # os.path.join keeps an absolute image path; pathlib costs 20 us an image
    count = len(names)
    taken: set[str] = set()
    members: dict[str, list[str]] = {split: [] for split in SPLIT_FILES}
    for image in dataset.images:
        uri = is_uri(image.path)
        source = image.path if uri else os.path.join(root, image.path)
        base = source.rsplit("/", 1)[-1] if uri else os.path.basename(source)
        stem, dot, suffix = base.rpartition(".")
        if not dot:
            stem, suffix = base, ""
        suffix = dot + suffix
        unique, n = stem, 0
        while unique.casefold() in taken:
            n += 1
            unique = f"{stem}-{n}"
        taken.add(unique.casefold())
        filename = unique + suffix
        path_line = ""
        if copy_images and not uri:
            link_or_copy(source, images_dir / filename)
        else:
            path_line = f"\t<path>{escape(source)}</path>\n"
        width, height = (image.width, image.height) if image.width and image.height else image_size(dataset, image)
        parts = [
            f"<annotation>\n\t<folder>{IMAGES_DIR}</folder>\n\t<filename>{escape(filename)}</filename>\n{path_line}"
            f"\t<source><database>multicloud-cv</database></source>\n"
            f"\t<size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
            "\t<segmented>0</segmented>\n"
        ]
        for b in image.boxes:
            label, x_min, y_min, x_max, y_max = b.label, b.x_min, b.y_min, b.x_max, b.y_max
            if not (0 <= label < count and -inf < x_min <= x_max < inf and -inf < y_min <= y_max < inf):
                raise _bad_box(image, b, count)
            bndbox = BNDBOX % (x_min + shift, y_min + shift, x_max, y_max)
            parts.append(f"\t<object><name>{names[label]}</name>{OBJECT_FLAGS}{bndbox}</object>\n")
        parts.append("</annotation>\n")
        _write_bytes(f"{xml_dir}/{unique}.xml", "".join(parts).encode())
        if image.split is not None:
            members[image.split].append(unique)
    for split, stems in members.items():
        if stems:
            (sets / SPLIT_FILES[split]).write_text("".join(f"{s}\n" for s in stems), encoding="utf-8")
    lines = ["# label:color_rgb:parts:actions\n"]
    for index, name in enumerate(dataset.classes, start=1):
        red, green, blue = voc_color(index)
        lines.append(f"{name}:{red},{green},{blue}::\n")
    (dest / LABELMAP).write_text("".join(lines), encoding="utf-8")
