"""Tagged images and regions into a Custom Vision project: batches built, sent, and read image by image.

Contracts:

* :func:`plan_batches` cuts the dataset's images (the core's :func:`multicloud_cv.datasets.customvision.iter_batches`:
  tags by name, regions normalised to 0..1, at most 300 regions and 6 MB an image) into batches of at most 64
  images, at most 20 distinct tags and at most ``max_batch_bytes`` (default 16 MiB: a 60 MB batch timed out for a
  user, pains.md A1, so batches are cut by bytes as well as by count).
* :func:`upload` sends each batch with ``create_images_from_files`` and reads the ``ImageCreateSummary`` image by
  image (an HTTP 207 answer is a partial success, not an error): ``OK`` and ``OKDuplicate`` (the same bytes are
  already in the project) count as uploaded; ``ErrorUnknown`` and ``ErrorStorage`` are transient and sent once more
  in a batch of their own; every other status is a refusal, collected with its file. What is refused in the end is
  raised as one :class:`~multicloud_cv.errors.BadInput` naming the first files and their statuses (the caller
  deletes the project it created, so nothing is left half-uploaded).
* Results are matched to entries by position (the service answers in the order it was sent), falling back to the
  ``sourceUrl`` the service echoes (the entry's name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicloud_cv.datasets.customvision import UploadEntry, iter_batches
from multicloud_cv.datasets.model import Dataset
from multicloud_cv.errors import BadInput

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
ACCEPTED = frozenset({"OK", "OKDuplicate"})
TRANSIENT = frozenset({"ErrorUnknown", "ErrorStorage"})


@dataclass
class UploadReport:
    """What an upload did: counts by status, the refused files with their status."""

    sent: int = 0
    uploaded: int = 0
    duplicates: int = 0
    retried: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    batches: int = 0


def plan_batches(
    dataset: Dataset, max_images: int = 64, max_tags: int = 20, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
) -> list[list[UploadEntry]]:
    """The dataset's images as upload batches within the count, tag and byte limits."""
    out: list[list[UploadEntry]] = []
    for batch in iter_batches(dataset, batch_size=max_images, max_batch_bytes=max_batch_bytes):
        current: list[UploadEntry] = []
        tags: set[str] = set()
        for entry in batch:
            names = set(entry["tag_names"]) | {r["tag_name"] for r in entry["regions"]}
            if current and len(tags | names) > max_tags:
                out.append(current)
                current, tags = [], set()
            current.append(entry)
            tags |= names
        if current:
            out.append(current)
    return out


def sdk_batch(entries: Sequence[UploadEntry], tag_ids: Mapping[str, str], read: Callable[[str], bytes]) -> Any:
    """An SDK ``ImageFileCreateBatch`` of ``entries`` (tag names mapped to ids, contents read by ``read``)."""
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
        Region,
    )

    images = []
    for entry in entries:
        regions = [
            Region(tag_id=tag_ids[r["tag_name"]], left=r["left"], top=r["top"], width=r["width"], height=r["height"])
            for r in entry["regions"]
        ]
        images.append(
            ImageFileCreateEntry(
                name=entry["name"],
                contents=bytearray(read(entry["path"])),
                tag_ids=[tag_ids[name] for name in entry["tag_names"]] or None,
                regions=regions or None,
            )
        )
    return ImageFileCreateBatch(images=images)


def _read_file(path: str) -> bytes:
    return Path(path).read_bytes()


def upload(
    send: Callable[[Any], Any],
    batches: Iterable[Sequence[UploadEntry]],
    tag_ids: Mapping[str, str],
    read: Callable[[str], bytes] = _read_file,
    progress: Callable[[int], None] | None = None,
) -> UploadReport:
    """Send every batch with ``send(ImageFileCreateBatch) -> ImageCreateSummary``; raise BadInput for refusals."""
    report = UploadReport()
    again: list[UploadEntry] = []
    for batch in batches:
        _send_one(send, list(batch), tag_ids, read, report, again, retry=True)
        if progress is not None:
            progress(len(batch))
    for start in range(0, len(again), 64):
        report.retried += len(again[start : start + 64])
        _send_one(send, again[start : start + 64], tag_ids, read, report, [], retry=False)
    if report.refused:
        first = "; ".join(f"{name}: {status}" for name, status in report.refused[:5])
        more = f" and {len(report.refused) - 5} more" if len(report.refused) > 5 else ""
        raise BadInput(
            f"Custom Vision refused {len(report.refused)} of {report.sent} images ({first}{more}); fix or remove "
            "those images and train again"
        )
    return report


def _send_one(
    send: Callable[[Any], Any],
    entries: list[UploadEntry],
    tag_ids: Mapping[str, str],
    read: Callable[[str], bytes],
    report: UploadReport,
    again: list[UploadEntry],
    retry: bool,
) -> None:
    summary = send(sdk_batch(entries, tag_ids, read))
    report.batches += 1
    report.sent += len(entries) if retry else 0
    results = list(getattr(summary, "images", None) or [])
    by_name = {str(getattr(r, "source_url", "") or "").strip('"'): r for r in results}
    for position, entry in enumerate(entries):
        result = results[position] if position < len(results) else by_name.get(entry["name"])
        status = str(getattr(result, "status", None) or "ErrorUnknown")
        if status in ACCEPTED:
            report.uploaded += 1
            report.duplicates += status == "OKDuplicate"
        elif status in TRANSIENT and retry:
            again.append(entry)
        else:
            report.refused.append((entry["path"], status))
    log.debug("batch of %d: %d uploaded so far, %d refused", len(entries), report.uploaded, len(report.refused))
