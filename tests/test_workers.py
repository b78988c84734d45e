"""Worker processes (multicloud_cv.workers): order, errors at their item, dead workers, nothing left behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from support import worker_children

from multicloud_cv.errors import MCVError
from multicloud_cv.workers import process_map

HERE = Path(__file__).resolve().parent


def square(x: int) -> int:
    return x * x


def square_but_13(x: int) -> int:
    if x == 13:
        raise ValueError("13 is refused")
    return x * x


def die_on_5(x: int) -> int:
    if x == 5:
        os._exit(3)
    return x


def slow_pid(x: int) -> tuple[int, int]:
    time.sleep(0.002)
    return x, os.getpid()


def print_and_pid(x: int) -> tuple[int, int]:
    print("noise on stdout must not reach the answers")
    return x, os.getpid()


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers import this test module by name: put its folder on their path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_results_in_order_from_several_processes_and_none_left() -> None:
    results = list(process_map(print_and_pid, range(101), processes=2, chunk_size=7))
    assert [x for x, _ in results] == list(range(101))
    assert len({pid for _, pid in results}) == 2 and os.getpid() not in {pid for _, pid in results}
    assert worker_children() == []


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_inline_the_caller_computes_chunks_too_in_order() -> None:
    results = list(process_map(slow_pid, range(300), processes=1, chunk_size=5, inline=True))
    assert [x for x, _ in results] == list(range(300))
    pids = {pid for _, pid in results}
    assert os.getpid() in pids and len(pids) == 2  # the caller while the worker started, then both
    assert worker_children() == []


@pytest.mark.parametrize("inline", [False, True])
def test_an_error_is_raised_at_its_item_after_the_results_before_it(inline: bool) -> None:
    seen = []
    with pytest.raises(ValueError, match="13 is refused"):
        for value in process_map(square_but_13, range(40), processes=2, chunk_size=5, inline=inline):
            seen.append(value)
    assert seen == [x * x for x in range(13)]


def test_a_dead_worker_is_an_error_naming_its_exit_status() -> None:
    with pytest.raises(MCVError, match="exit status 3"):
        list(process_map(die_on_5, range(20), processes=1, chunk_size=4))


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_closing_early_stops_every_worker() -> None:
    results = process_map(square, range(10_000), processes=2, chunk_size=3)
    assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
    results.close()
    assert worker_children() == []


def test_only_module_level_functions() -> None:
    with pytest.raises(ValueError, match="module-level function"):
        list(process_map(lambda x: x, [1], processes=1))
    assert list(process_map(square, [], processes=2)) == []
