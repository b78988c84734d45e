"""Waiting with backoff: intervals grow to a ceiling; a timeout is an error that says the job keeps running."""

from __future__ import annotations

import pytest

from multicloud_cv.errors import WaitTimeout
from multicloud_cv.waiting import Backoff, poll


def test_backoff_grows_to_ceiling() -> None:
    step = Backoff(initial=1, factor=2, maximum=5, jitter=0).intervals()
    assert [step() for _ in range(5)] == [1, 2, 4, 5, 5]


def test_poll_stops_when_done_and_reports_every_value() -> None:
    values = iter(["QUEUED", "RUNNING", "DONE"])
    seen: list[str] = []
    slept: list[float] = []
    result = poll(
        lambda: next(values),
        lambda v: v == "DONE",
        Backoff(initial=0.5, jitter=0),
        on_update=seen.append,
        sleep=slept.append,
    )
    assert result == "DONE" and seen == ["QUEUED", "RUNNING", "DONE"] and len(slept) == 2


def test_poll_times_out() -> None:
    with pytest.raises(WaitTimeout, match="job x still not finished"):
        poll(lambda: "RUNNING", lambda v: False, Backoff(initial=0.01, jitter=0), timeout=0.05, what="job x")
