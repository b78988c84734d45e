"""MicroBatcher and ServerOptions, in-process (no HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcv_local.serving.errors import InvalidImage
from mcv_local.serving.server import MicroBatcher, ServerOptions
from mcv_local.serving.session import OnnxModel
from multicloud_cv.workers import usable_cpus


class RecordingModel:
    """Wraps an OnnxModel and records the batch sizes it was asked to score."""

    def __init__(self, model: OnnxModel, delay_s: float = 0.0) -> None:
        self.model = model
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def decode(self, data: bytes) -> np.ndarray:
        return self.model.decode(data)

    def predict_pixels(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.batches.append(int(batch.shape[0]))
        time.sleep(self.delay_s)
        return self.model.predict_pixels(batch)


@pytest.fixture(scope="module")
def model(classification_dir: Path) -> OnnxModel:
    return OnnxModel(classification_dir, intra_op_threads=1)


def run_batcher(batcher: MicroBatcher, items: list[Any]) -> list[Any]:
    async def go() -> list[Any]:
        batcher.start()
        await asyncio.sleep(0.01)  # the workers wait for work, as in a running server
        try:
            return await asyncio.gather(*(batcher.submit(item) for item in items), return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(go())


def test_concurrent_items_are_batched_and_answered_in_order(model: OnnxModel, image_bytes: Any) -> None:
    recorder = RecordingModel(model)
    images = [image_bytes("PNG", seed=s) for s in range(10)]
    batcher = MicroBatcher(recorder, max_batch=4, max_wait_s=0.01, workers=1)  # type: ignore[arg-type]
    results = run_batcher(batcher, images)
    expected = model.predict_pixels(np.stack([model.decode(b) for b in images]))
    for got, want in zip(results, expected, strict=True):
        assert np.allclose(got, want, atol=1e-6)
    assert sum(recorder.batches) == 10 and max(recorder.batches) <= 4
    assert len(recorder.batches) < 10  # some batching happened
    assert batcher.images == 10 and batcher.batches == len(recorder.batches)


def test_pixels_and_bytes_can_be_mixed(model: OnnxModel, image_bytes: Any) -> None:
    data = image_bytes("JPEG", seed=3)
    pixels = model.decode(data)
    batcher = MicroBatcher(model, max_batch=8, max_wait_s=0.01, workers=1)
    first, second = run_batcher(batcher, [data, pixels])
    assert np.allclose(first, second, atol=1e-6)


def test_a_bad_image_fails_alone(model: OnnxModel, image_bytes: Any) -> None:
    good = image_bytes("PNG", seed=4)
    batcher = MicroBatcher(model, max_batch=8, max_wait_s=0.01, workers=1)
    results = run_batcher(batcher, [good, b"not an image", good])
    assert isinstance(results[1], InvalidImage)
    assert np.allclose(results[0], results[2], atol=1e-6)


def test_idle_workers_get_a_fair_share(model: OnnxModel, image_bytes: Any) -> None:
    recorder = RecordingModel(model, delay_s=0.05)
    images = [image_bytes("PNG", seed=s) for s in range(8)]
    batcher = MicroBatcher(recorder, max_batch=8, max_wait_s=0.02, workers=2)  # type: ignore[arg-type]
    started = time.perf_counter()
    run_batcher(batcher, images)
    assert sum(recorder.batches) == 8
    assert len(recorder.batches) >= 2  # not all eight on one worker while the other idles
    assert time.perf_counter() - started < 5


def test_a_lone_small_batch_uses_the_solo_session(model: OnnxModel, image_bytes: Any) -> None:
    solo = RecordingModel(model)
    regular = RecordingModel(model)
    batcher = MicroBatcher(regular, max_batch=8, max_wait_s=0.0, workers=2, solo_model=solo)  # type: ignore[arg-type]
    run_batcher(batcher, [image_bytes("PNG")])
    assert solo.batches == [1] and regular.batches == []
    assert batcher.solo_batches == 1


def test_server_options_defaults() -> None:
    cores = usable_cpus()
    opts = ServerOptions().resolved()
    assert opts.inference_threads == cores and opts.intra_op_threads == 1
    assert opts.decode_threads == 0 and opts.max_batch >= 1
    assert opts.solo_threads == (cores if cores > 1 else 0)
    wide = ServerOptions(inference_threads=1, intra_op_threads=cores, decode_threads=2).resolved()
    assert wide.solo_threads == 0 and wide.decode_threads == 2


def test_waits_only_for_requests_already_arriving(model: OnnxModel, image_bytes: Any) -> None:
    data = image_bytes("PNG", seed=7)

    async def go(arriving: bool) -> list[int]:
        recorder = RecordingModel(model)
        batcher = MicroBatcher(recorder, max_batch=8, max_wait_s=0.5, workers=1)  # type: ignore[arg-type]
        batcher.start()
        await asyncio.sleep(0.01)
        try:
            batcher.arriving = 1 if arriving else 0
            first = batcher.submit(data)
            await asyncio.sleep(0.05)  # the second request is still being read
            batcher.arriving = 0
            second = batcher.submit(data)
            await asyncio.gather(first, second)
        finally:
            await batcher.stop()
        return recorder.batches

    assert asyncio.run(go(arriving=True)) == [2]  # waited for the request on its way
    assert asyncio.run(go(arriving=False)) == [1, 1]  # nothing on its way: ran at once
