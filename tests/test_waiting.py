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


@pytest.mark.parametrize(
    ("poll_s", "first", "ceiling"),
    [(None, 10.0, 60.0), ("10", 10.0, 60.0), ("0.5", 0.5, 3.0), ("2", 2.0, 12.0), ("120", 120.0, 120.0)],
)
def test_poll_s_scales_the_schedule_and_its_ceiling(poll_s: str | None, first: float, ceiling: float) -> None:
    from multicloud_cv.config import Setting
    from multicloud_cv.interfaces import ProviderPlugin

    class Polled(ProviderPlugin):
        name = "polled"
        settings = (Setting("poll_s", "first status poll, seconds"),)
        backoff = Backoff(initial=10.0, factor=1.5, maximum=60.0)

    schedule = Polled({} if poll_s is None else {"poll_s": poll_s}).poll_schedule()
    assert (schedule.initial, schedule.maximum, schedule.factor) == (first, ceiling, 1.5)
