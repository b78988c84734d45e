"""Manifest validation as Rekognition Custom Labels does it: per-line errors, use case, statistics, outputs.

The rules (DG = Rekognition Custom Labels Developer Guide, awsdocs repository, ``doc_source/<page>.md``;
pains.md R1-R5; cloud-apis.md 8):

* Each line of a manifest is one dataset object; "Blank/invalid lines are also counted as dataset objects"
  (DG ``md-create-manifest-file-validation-rules.md``). A line over 100,000 characters, a line that is not
  a JSON object (``ERROR_INVALID_JSON_LINE``), a missing ``source-ref`` (``ERROR_MISSING_SOURCE_REF``), a
  ``source-ref`` that is not ``s3://bucket/key`` (``ERROR_INVALID_SOURCE_REF_FORMAT``) and a ``source-ref``
  seen on an earlier line (``ERROR_DUPLICATE_SOURCE_REF``, the emulator's code for the guide's rule "An
  image can only be referenced once in a dataset") are *terminal content errors* for dataset operations:
  CreateDataset drops such lines (DG ``debugging-datasets-terminal-errors.md``); in a training manifest they
  are invalid lines.
* Label attributes are the keys ``<name>`` with a ``<name>-metadata`` object (DG
  ``tm-debugging-json-line-errors.md``). ``groundtruth/image-classification``: an integer value and metadata
  with ``class-name``, ``confidence``, ``human-annotated``, ``creation-date`` (``ERROR_INVALID_LABEL_
  ATTRIBUTE_FORMAT`` / ``..._METADATA_FORMAT``); several such attributes give several image-level labels.
  ``groundtruth/object-detection``: ``image_size`` and ``annotations`` in pixels, metadata with
  ``class-map``, ``objects`` (one ``confidence`` per box: ``ERROR_MISSING_BOUNDING_BOX_CONFIDENCE``),
  ``human-annotated``, ``creation-date``. Other types are not label attributes Rekognition reads: a line
  with none it reads has ``ERROR_NO_LABEL_ATTRIBUTES`` (no pair at all) or ``ERROR_NO_VALID_LABEL_ATTRIBUTES``.
* Boxes (annotation-level errors, the box is dropped, the line stays usable): ``class_id`` missing from the
  class map (``ERROR_MISSING_CLASS_MAP_ID``), negative or off-frame values against the line's
  ``image_size`` (``ERROR_INVALID_BOUNDING_BOX``), a box of at most 1 x 1 px after the service's resize of
  images over 1280 px (``ERROR_BOUNDING_BOX_TOO_SMALL``). More than 50 boxes (``ERROR_TOO_MANY_BOUNDING_BOXES``)
  or no valid box left (``ERROR_NO_VALID_ANNOTATIONS``) invalidate the attribute. The line's ``image_size``
  is not compared with the image: the service trains on it as given (pains.md R1, ARGUS).
* A detection line with no box at all is valid but ignored: ``WARNING_NO_ATTRIBUTE_ANNOTATIONS`` on the
  attribute and ``WARNING_NO_ANNOTATIONS`` on the line; ignored lines are not labeled entries and "don't
  count towards the 20% error threshold" (DG ``tm-debugging-scope-json-line.md``; pains.md R4).
* Images (read from S3 through an :class:`ImageProbe`): missing, unreadable, not PNG or JPEG, over 15 MB
  or with an aspect ratio over 20:1 are ``ERROR_INVALID_IMAGE``; a side under 64 or over 4096 px is
  ``ERROR_INVALID_IMAGE_DIMENSION`` (DG ``limits.md``; pains.md R5). The line is invalid.
* The use case of a manifest is ``OBJECT_LOCALIZATION`` or ``IMAGE_LEVEL_LABELS``, whichever most valid
  lines have (boxes win a tie), ``NOT_DETERMINED`` with no valid line; valid lines of the other use case are
  filtered out (counted as ignored here) (DG ``tm-debugging-aggregate-errors.md``,
  ERROR_MANIFEST_TOO_FEW_USABLE_LABELS).

The validation outputs follow DG ``tm-debugging-scope-json-line.md``: each line copied with ``errors``
(line), ``<attr>-metadata.errors`` (image-level labels and metadata), ``<attr>.errors``,
``<attr>.annotations[i].errors``, ``warnings``; an unparseable line is replaced by ``{"errors": [...]}``.
Statistics follow DG ``tm-debugging-summary.md`` (``error_json_line_indices`` are 1-based line numbers).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcv_rekognition.emulator.texts import line_error
from multicloud_cv.emulation.aws import S3, split_uri

log = logging.getLogger(__name__)

CLASSIFICATION = "groundtruth/image-classification"
DETECTION = "groundtruth/object-detection"
IMAGE_LEVEL = "IMAGE_LEVEL_LABELS"
LOCALIZATION = "OBJECT_LOCALIZATION"
NOT_DETERMINED = "NOT_DETERMINED"

MAX_LINE_CHARS = 100_000
MAX_LINES = 250_000
MAX_MANIFEST_BYTES = 1024**3
MAX_IMAGE_BYTES = 15 * 1024 * 1024
MIN_SIDE, MAX_SIDE, MAX_ASPECT = 64, 4096, 20.0
MAX_BOXES = 50
RESIZE_SIDE = 1280
"""The service resizes images whose side exceeds this before training (DG, ERROR_BOUNDING_BOX_TOO_SMALL)."""
FORMATS = ("PNG", "JPEG")


# ------------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageCheck:
    """What the service learns about one image: the local copy and its size, or the line error it causes."""

    path: Path | None
    width: int = 0
    height: int = 0
    code: str | None = None
    detail: str | None = None


class ImageProbe:
    """Reads images from S3 (moto) into a local cache, once per object version (ETag), and checks them."""

    def __init__(self, s3: S3, cache: Path) -> None:
        self.s3 = s3
        self.cache = cache
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str, str], ImageCheck] = {}

    def check(self, bucket: str, key: str) -> ImageCheck:
        """The :class:`ImageCheck` of ``s3://bucket/key``."""
        from botocore.exceptions import ClientError

        try:
            head = self.s3.client().head_object(Bucket=bucket, Key=key)
        except ClientError:
            return ImageCheck(
                None, code="ERROR_INVALID_IMAGE", detail=f"(s3://{bucket}/{key} is missing or unreadable)"
            )
        tag = str(head.get("ETag", ""))
        with self._lock:
            known = self._known.get((bucket, key, tag))
        if known is not None:
            return known
        result = self._probe(bucket, key, tag, int(head.get("ContentLength", 0)))
        with self._lock:
            self._known[(bucket, key, tag)] = result
        return result

    def _probe(self, bucket: str, key: str, tag: str, size: int) -> ImageCheck:
        from PIL import Image, UnidentifiedImageError

        where = f"s3://{bucket}/{key}"
        if size > MAX_IMAGE_BYTES:
            return ImageCheck(None, code="ERROR_INVALID_IMAGE", detail=f"({where} is {size} bytes; at most 15 MB)")
        data = self.s3.get(bucket, key)
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return ImageCheck(None, code="ERROR_INVALID_IMAGE", detail=f"({where} is not an image)")
        if kind not in FORMATS:
            return ImageCheck(None, code="ERROR_INVALID_IMAGE", detail=f"({where} is {kind}; PNG or JPEG only)")
        if max(width, height) / max(1, min(width, height)) > MAX_ASPECT:
            return ImageCheck(
                None, code="ERROR_INVALID_IMAGE", detail=f"({where} is {width} x {height} px; aspect ratio over 20:1)"
            )
        if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
            return ImageCheck(
                None,
                code="ERROR_INVALID_IMAGE_DIMENSION",
                detail=f"({where} is {width} x {height} px; each side must be 64 to 4096 px)",
            )
        safe = tag.strip('"').replace("/", "_") or "object"
        path = self.cache / bucket / f"{key}.{safe}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # written atomically: another thread may be reading the same image
            partial = path.with_name(f"{path.name}.{threading.get_ident()}.part")
            partial.write_bytes(data)
            os.replace(partial, path)
        return ImageCheck(path, width, height)


# -------------------------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class Box:
    """A valid box: its label and its pixel coordinates as written in the manifest."""

    label: str
    left: float
    top: float
    width: float
    height: float


@dataclass
class Entry:
    """One manifest line after validation (see the module docstring)."""

    number: int
    output: dict[str, Any]
    source_ref: str | None = None
    bucket: str | None = None
    key: str | None = None
    use_case: str | None = None
    labels: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    image: ImageCheck | None = None
    has_errors: bool = False
    invalid: bool = False
    ignored: bool = False
    terminal: bool = False

    @property
    def all_labels(self) -> set[str]:
        """The image-level labels and box labels of the line."""
        return set(self.labels) | {box.label for box in self.boxes}

    def usable(self, use_case: str) -> bool:
        """True when the line trains or tests a model of ``use_case``."""
        return not self.invalid and not self.ignored and self.use_case == use_case

    def text(self) -> str:
        """The line as it goes into a validation manifest or ListDatasetEntries."""
        return json.dumps(self.output, separators=(",", ":"))


def clean(obj: Any) -> Any:
    """A copy of a manifest line without the ``errors``/``warnings`` an earlier validation added."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items() if k not in ("errors", "warnings")}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _add(target: dict[str, Any], key: str, item: dict[str, str]) -> None:
    target.setdefault(key, []).append(item)


class LineValidator:
    """Validates the lines of one manifest in order (duplicates are found across its lines)."""

    def __init__(self, probe: ImageProbe | None) -> None:
        self.probe = probe
        self.seen: set[str] = set()

    def validate(self, number: int, text: str) -> Entry:
        """The :class:`Entry` of line ``number`` (1-based)."""
        if len(text) > MAX_LINE_CHARS:
            return self._unreadable(number, f"(the line has {len(text)} characters; at most 100,000)")
        try:
            obj = json.loads(text)
        except ValueError:
            return self._unreadable(number, None)
        if not isinstance(obj, dict):
            return self._unreadable(number, "(the line is not a JSON object)")
        out = clean(obj)
        entry = Entry(number, copy.deepcopy(out))
        ref = out.get("source-ref")
        if ref is None:
            self._line_error(entry, line_error("ERROR_MISSING_SOURCE_REF"), terminal=True)
        elif not isinstance(ref, str) or not ref.startswith("s3://"):
            self._line_error(entry, line_error("ERROR_INVALID_SOURCE_REF_FORMAT"), terminal=True)
        else:
            try:
                bucket, key = split_uri(ref)
            except ValueError:
                bucket, key = "", ""
            if not key:
                self._line_error(entry, line_error("ERROR_INVALID_SOURCE_REF_FORMAT"), terminal=True)
            elif ref in self.seen:
                self._line_error(entry, line_error("ERROR_DUPLICATE_SOURCE_REF", f"({ref})"), terminal=True)
            else:
                self.seen.add(ref)
                entry.source_ref, entry.bucket, entry.key = ref, bucket, key
        self._attributes(entry, out)
        if not entry.invalid and not entry.ignored and self.probe is not None and entry.bucket and entry.key:
            check = self.probe.check(entry.bucket, entry.key)
            entry.image = check
            if check.code is not None:
                self._line_error(entry, line_error(check.code, check.detail))
        return entry

    def _unreadable(self, number: int, detail: str | None) -> Entry:
        output = {"errors": [line_error("ERROR_INVALID_JSON_LINE", detail)]}
        return Entry(number, output, has_errors=True, invalid=True, terminal=True)

    @staticmethod
    def _line_error(entry: Entry, error: dict[str, str], terminal: bool = False) -> None:
        _add(entry.output, "errors", error)
        entry.has_errors = True
        entry.invalid = True
        entry.terminal = entry.terminal or terminal

    def _attributes(self, entry: Entry, obj: dict[str, Any]) -> None:
        names = [k for k in obj if k != "source-ref" and not k.endswith("-metadata") and f"{k}-metadata" in obj]
        if not names:
            self._line_error(entry, line_error("ERROR_NO_LABEL_ATTRIBUTES"))
            return
        readable = 0
        empty_detection = False
        for name in names:
            meta = obj[f"{name}-metadata"]
            kind = meta.get("type") if isinstance(meta, dict) else None
            if not isinstance(meta, dict) or not isinstance(kind, str):
                out_meta = entry.output[f"{name}-metadata"]
                error = line_error("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", "(the metadata has no type)")
                if isinstance(out_meta, dict):
                    _add(out_meta, "errors", error)
                    entry.has_errors = True
                else:
                    self._line_error(entry, error)
                continue
            if kind == CLASSIFICATION:
                readable += self._classification(entry, name, obj[name], meta)
            elif kind == DETECTION:
                outcome = self._detection(entry, name, obj[name], meta)
                readable += outcome == "boxes"
                empty_detection = empty_detection or outcome == "empty"
        if entry.invalid:
            return
        if entry.boxes:
            entry.use_case = LOCALIZATION
        elif entry.labels:
            entry.use_case = IMAGE_LEVEL
        elif empty_detection:
            _add(entry.output, "warnings", line_error("WARNING_NO_ANNOTATIONS"))
            entry.use_case = LOCALIZATION
            entry.ignored = True
        elif not readable:
            self._line_error(entry, line_error("ERROR_NO_VALID_LABEL_ATTRIBUTES"))

    def _classification(self, entry: Entry, name: str, value: Any, meta: dict[str, Any]) -> int:
        out_meta = entry.output[f"{name}-metadata"]
        problem = None
        if not isinstance(value, int) or isinstance(value, bool):
            problem = line_error("ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", "(the value must be an integer)", name)
        else:
            missing = [k for k in ("class-name", "confidence", "human-annotated", "creation-date") if k not in meta]
            label = meta.get("class-name")
            if missing:
                detail = f"(missing {', '.join(missing)})"
                problem = line_error("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", detail)
            elif not isinstance(label, str) or not label.strip() or not _number(meta.get("confidence")):
                detail = "(class-name must be a non-empty string and confidence a number)"
                problem = line_error("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", detail)
        if problem is not None:
            _add(out_meta, "errors", problem)
            entry.has_errors = True
            return 0
        label = str(meta["class-name"])
        if label not in entry.labels:
            entry.labels.append(label)
        return 1

    def _detection(self, entry: Entry, name: str, value: Any, meta: dict[str, Any]) -> str:
        """Validate one box attribute: ``"boxes"`` (usable boxes), ``"empty"`` (no annotation) or ``"invalid"``."""
        out_value = entry.output[name]
        out_meta = entry.output[f"{name}-metadata"]
        size = value.get("image_size") if isinstance(value, dict) else None
        annotations = value.get("annotations") if isinstance(value, dict) else None
        first: dict[str, Any] = size[0] if isinstance(size, list) and size and isinstance(size[0], dict) else {}
        raw_width, raw_height = first.get("width"), first.get("height")
        width = float(raw_width) if isinstance(raw_width, int | float) and _number(raw_width) else 0.0
        height = float(raw_height) if isinstance(raw_height, int | float) and _number(raw_height) else 0.0
        if not (width > 0 and height > 0 and isinstance(annotations, list)):
            problem = line_error(
                "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", "(image_size with width and height, and annotations)", name
            )
            if isinstance(out_value, dict):
                _add(out_value, "errors", problem)
                entry.has_errors = True
            else:
                self._line_error(entry, problem)
            return "invalid"
        class_map = meta.get("class-map")
        objects = meta.get("objects")
        missing = [k for k in ("human-annotated", "creation-date") if k not in meta]
        if not isinstance(class_map, dict) or not isinstance(objects, list) or missing:
            detail = "(class-map, objects, human-annotated and creation-date are required)"
            _add(out_meta, "errors", line_error("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", detail))
            entry.has_errors = True
            return "invalid"
        if not annotations:
            _add(out_value, "warnings", line_error("WARNING_NO_ATTRIBUTE_ANNOTATIONS"))
            return "empty"
        if len(annotations) > MAX_BOXES:
            detail = f"({len(annotations)} boxes; at most {MAX_BOXES})"
            _add(out_value, "errors", line_error("ERROR_TOO_MANY_BOUNDING_BOXES", detail))
            entry.has_errors = True
            return "invalid"
        scale = min(1.0, RESIZE_SIDE / max(width, height))
        boxes: list[Box] = []
        missing_confidence = False
        for index, (raw, out) in enumerate(zip(annotations, out_value["annotations"], strict=True)):
            error: dict[str, str] | None = None
            numbers = isinstance(raw, dict) and all(_number(raw.get(k)) for k in ("left", "top", "width", "height"))
            class_id = raw.get("class_id") if isinstance(raw, dict) else None
            known = objects[index] if index < len(objects) else None
            if not numbers or not isinstance(class_id, int) or isinstance(class_id, bool):
                error = line_error("ERROR_INVALID_BOUNDING_BOX", "(class_id, left, top, width and height are required)")
            elif str(class_id) not in class_map or not isinstance(class_map[str(class_id)], str):
                error = line_error("ERROR_MISSING_CLASS_MAP_ID", f"(class_id {class_id})")
            elif not isinstance(known, dict) or not _number(known.get("confidence")):
                missing_confidence = True
                continue
            else:
                left, top, w, h = (float(raw[k]) for k in ("left", "top", "width", "height"))
                if left < 0 or top < 0 or w < 0 or h < 0 or left + w > width or top + h > height:
                    error = line_error("ERROR_INVALID_BOUNDING_BOX")
                elif w * scale <= 1 or h * scale <= 1:
                    error = line_error("ERROR_BOUNDING_BOX_TOO_SMALL")
                else:
                    boxes.append(Box(str(class_map[str(class_id)]), left, top, w, h))
            if error is not None:
                if isinstance(out, dict):
                    _add(out, "errors", error)
                else:
                    _add(out_value, "errors", error)
                entry.has_errors = True
        if missing_confidence:
            _add(out_meta, "errors", line_error("ERROR_MISSING_BOUNDING_BOX_CONFIDENCE"))
            entry.has_errors = True
        if not boxes:
            _add(out_value, "errors", line_error("ERROR_NO_VALID_ANNOTATIONS"))
            entry.has_errors = True
            return "invalid"
        entry.boxes.extend(boxes)
        return "boxes"


# ------------------------------------------------------------------------------------------ manifest


@dataclass
class Validation:
    """A validated manifest: its entries, use case and the statistics of DG ``tm-debugging-summary.md``."""

    entries: list[Entry]
    use_case: str = NOT_DETERMINED
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, lines: Iterable[str], probe: ImageProbe | None) -> Validation:
        """Validate ``lines`` (one manifest, in order)."""
        validator = LineValidator(probe)
        entries = [validator.validate(number, text) for number, text in enumerate(lines, start=1)]
        return cls.from_entries(entries)

    @classmethod
    def from_entries(cls, entries: list[Entry]) -> Validation:
        """A validation over already validated entries (choosing the use case)."""
        counts = {
            case: sum(1 for e in entries if not e.invalid and not e.ignored and e.use_case == case)
            for case in (IMAGE_LEVEL, LOCALIZATION)
        }
        if counts[LOCALIZATION] and counts[LOCALIZATION] >= counts[IMAGE_LEVEL]:
            use_case = LOCALIZATION
        elif counts[IMAGE_LEVEL]:
            use_case = IMAGE_LEVEL
        else:
            use_case = NOT_DETERMINED
        return cls(entries, use_case)

    @property
    def usable(self) -> list[Entry]:
        """The lines that train or test the model of this manifest's use case."""
        return [e for e in self.entries if e.usable(self.use_case)]

    def labels(self, use_case: str | None = None) -> set[str]:
        """Labels of the usable lines (of ``use_case``, this manifest's by default)."""
        case = use_case or self.use_case
        return {label for e in self.entries if e.usable(case) for label in e.all_labels}

    @property
    def invalid(self) -> int:
        """Lines not used because of errors."""
        return sum(1 for e in self.entries if e.invalid)

    @property
    def ignored(self) -> int:
        """Valid lines not used: no annotations, or a use case other than the manifest's."""
        return sum(1 for e in self.entries if not e.invalid and not e.usable(self.use_case))

    @property
    def buckets(self) -> set[str]:
        """The buckets the lines' images are in."""
        return {e.bucket for e in self.entries if e.bucket}

    def too_many_invalid(self) -> bool:
        """More than 20 % of the lines are invalid (ignored lines are not errors)."""
        return bool(self.entries) and self.invalid > 0.2 * len(self.entries)

    def statistics(self) -> dict[str, Any]:
        """One dataset's section of ``manifest_summary.json``."""
        return {
            "use_case": self.use_case,
            "total_json_lines": len(self.entries),
            "valid_json_lines": len(self.usable),
            "invalid_json_lines": self.invalid,
            "ignored_json_lines": self.ignored,
            "error_json_line_indices": [e.number for e in self.entries if e.has_errors],
            "errors": list(self.errors),
        }

    def with_validation(self) -> bytes:
        """The ``*_manifest_with_validation.json`` file: every line with its errors (JSON Lines)."""
        return "".join(e.text() + "\n" for e in self.entries).encode("utf-8")


# ------------------------------------------------------------------------------------------- reading


class ManifestFileError(Exception):
    """A terminal manifest file error (DG ``tm-terminal-errors-reference.md``): ``code`` and a ``detail``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}")
        self.code = code
        self.detail = detail


def read_manifest(s3: S3, bucket: str, key: str) -> list[str]:
    """The lines of the manifest ``s3://bucket/key``; :class:`ManifestFileError` for file-level problems.

    The file needs an extension ("By convention the file extension is .manifest") and must exist, be UTF-8,
    hold at most 1 GB and 250,000 lines and not be empty.
    """
    where = f"(s3://{bucket}/{key})"
    name = key.rsplit("/", 1)[-1]
    if "." not in name.strip(".") or name.endswith("."):
        raise ManifestFileError("ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT", f"{where} has no file extension")
    size = s3.size(bucket, key)
    if size is None:
        raise ManifestFileError("ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT", f"{where} was not found")
    if size > MAX_MANIFEST_BYTES:
        raise ManifestFileError("ERROR_MANIFEST_SIZE_TOO_LARGE", f"{where} is {size} bytes; at most 1 GB")
    try:
        text = s3.get(bucket, key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestFileError("ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT", f"{where} is not UTF-8") from exc
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ManifestFileError("ERROR_EMPTY_MANIFEST", where)
    if len(lines) > MAX_LINES:
        raise ManifestFileError(
            "ERROR_MANIFEST_ROWS_EXCEEDS_MAXIMUM", f"{where} has {len(lines)} lines; at most 250,000"
        )
    return lines


def split_entries(
    entries: list[Entry], use_case: str, fraction: float = 0.2, seed: int = 0
) -> tuple[list[Entry], list[Entry]] | None:
    """Move ``fraction`` of the usable entries (at least one per label) to a test set, stratified by each
    entry's first label, seeded; ``None`` when a label has fewer than 2 usable images to share."""
    import random

    strata: dict[str, list[int]] = {}
    for position, entry in enumerate(entries):
        if entry.usable(use_case):
            first = entry.labels[0] if entry.labels else entry.boxes[0].label
            strata.setdefault(first, []).append(position)
    if not strata or any(len(positions) < 2 for positions in strata.values()):
        return None
    rng = random.Random(seed)
    moved: set[int] = set()
    for name in sorted(strata):
        positions = strata[name]
        rng.shuffle(positions)
        moved.update(positions[: max(1, round(len(positions) * fraction))])
    train = [e for i, e in enumerate(entries) if i not in moved]
    test = [e for i, e in enumerate(entries) if i in moved]
    return train, test
