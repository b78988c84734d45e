"""Dataset operations in the emulator: CreateDataset's import and DistributeDatasetEntries' split.

* CreateDataset (BC docs; DG ``debugging-datasets-terminal-errors.md``, ``debugging-datasets-non-terminal-
  errors.md``): ``CREATE_IN_PROGRESS`` for at least ``pace`` seconds, then ``CREATE_COMPLETE`` with
  ``DatasetStats``, or ``CREATE_FAILED`` with ``StatusMessageCode`` ``CLIENT_ERROR`` and a StatusMessage
  naming the terminal file error (``ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT``,
  ``ERROR_EMPTY_MANIFEST``, ``ERROR_MANIFEST_SIZE_TOO_LARGE``, ``ERROR_MANIFEST_ROWS_EXCEEDS_MAXIMUM``,
  ``ERROR_MANIFEST_TOO_MANY_LABELS``, ``ERROR_TOO_MANY_RECORDS_IN_ERROR`` when more than 20 % of the
  lines have terminal content errors). Lines with terminal content errors (too long, not JSON, no or a bad
  ``source-ref``, a repeated ``source-ref``) are dropped silently: "Terminal content errors related to
  dataset operations aren't displayed in the console or returned from DescribeDataset or other API"
  (pains.md R1: check ``TotalEntries`` against the line count). Lines with non-terminal errors stay, with
  their ``errors`` lists, as ListDatasetEntries shows them.
* A dataset copied from another (``DatasetSource.DatasetArn``) takes its entries.
* DistributeDatasetEntries (BC docs): both datasets ``UPDATE_IN_PROGRESS``, then 20 % of the training
  entries (stratified by first label) move to the empty test dataset and both are ``UPDATE_COMPLETE``;
  with fewer than 2 usable images for some label both are ``UPDATE_FAILED`` with
  ``ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_DISTRIBUTE`` (the DG's dataset error for a failed split).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mcv_rekognition.emulator.manifest import (
    Entry,
    ImageProbe,
    ManifestFileError,
    Validation,
    read_manifest,
    split_entries,
)
from mcv_rekognition.emulator.store import DatasetRecord
from mcv_rekognition.emulator.texts import status_message
from multicloud_cv.emulation.aws import S3

log = logging.getLogger(__name__)

MAX_LABELS = 250


def import_dataset(
    dataset: DatasetRecord,
    manifest: tuple[str, str] | None,
    copied: list[Entry] | None,
    s3: S3,
    probe: ImageProbe,
    pace: float,
    closing: threading.Event,
) -> None:
    """CreateDataset's work (thread target); never raises."""
    try:
        if closing.wait(pace):
            return
        if copied is not None:
            with dataset.lock:
                dataset.entries = list(copied)
            dataset.set_status("CREATE_COMPLETE")
            return
        if manifest is None:
            dataset.set_status("CREATE_COMPLETE")
            return
        try:
            lines = read_manifest(s3, *manifest)
        except ManifestFileError as error:
            dataset.set_status("CREATE_FAILED", status_message(error.code, error.detail), "CLIENT_ERROR")
            return
        validation = Validation.of(lines, probe)
        kept = [e for e in validation.entries if not e.terminal]
        dropped = len(validation.entries) - len(kept)
        if dropped > 0.2 * len(validation.entries):
            detail = f"({dropped} of {len(validation.entries)} lines)"
            dataset.set_status(
                "CREATE_FAILED", status_message("ERROR_TOO_MANY_RECORDS_IN_ERROR", detail), "CLIENT_ERROR"
            )
            return
        labels = {label for e in kept if not e.invalid and not e.ignored for label in e.all_labels}
        if len(labels) > MAX_LABELS:
            detail = f"({len(labels)} labels; at most {MAX_LABELS})"
            dataset.set_status(
                "CREATE_FAILED", status_message("ERROR_MANIFEST_TOO_MANY_LABELS", detail), "CLIENT_ERROR"
            )
            return
        if dropped:
            log.info("dataset %s: %d lines with terminal content errors dropped", dataset.arn, dropped)
        with dataset.lock:
            dataset.entries = kept
        dataset.set_status("CREATE_COMPLETE")
    except Exception as exc:  # the dataset's last word: a service error
        log.warning("dataset %s failed inside the emulator", dataset.arn, exc_info=True)
        dataset.set_status(
            "CREATE_FAILED",
            f"Amazon Rekognition experienced a service issue. ({type(exc).__name__}: {exc})",
            "SERVICE_ERROR",
        )


def distribute(train: DatasetRecord, test: DatasetRecord, pace: float, closing: threading.Event) -> None:
    """DistributeDatasetEntries' work (thread target; both datasets are UPDATE_IN_PROGRESS); never raises."""
    if closing.wait(pace):
        return
    with train.lock:
        entries = list(train.entries)
    validation = Validation.from_entries(entries)
    split = split_entries(entries, validation.use_case)
    if split is None:
        message = status_message("ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_DISTRIBUTE")
        for dataset in (train, test):
            dataset.set_status("UPDATE_FAILED", message, "CLIENT_ERROR")
        return
    kept, moved = split
    with train.lock:
        train.entries = kept
    with test.lock:
        test.entries = list(test.entries) + moved
    for dataset in (train, test):
        dataset.set_status("UPDATE_COMPLETE")


def label_stats(entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """``{label: {"EntryCount", "BoundingBoxCount"}}`` over the usable entries (ListDatasetLabels)."""
    stats: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.invalid or entry.ignored:
            continue
        for label in entry.all_labels:
            row = stats.setdefault(label, {"EntryCount": 0, "BoundingBoxCount": 0})
            row["EntryCount"] += 1
        for box in entry.boxes:
            stats[box.label]["BoundingBoxCount"] += 1
    return stats
