"""Waiting with backoff, the same for every provider.

Plugins never loop on a status call themselves: the core polls their describe hook with
exponential backoff (with jitter), stops at a terminal state or at the timeout, and hands
every observed state to a callback that draws the progress display.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from multicloud_cv.errors import WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Poll schedule: first interval, growth factor, ceiling, and jitter fraction."""

    initial: float = 1.0
    factor: float = 1.5
    maximum: float = 30.0
    jitter: float = 0.1

    def intervals(self) -> Callable[[], float]:
        """A function returning the next sleep each time it is called."""
        state = {"next": self.initial}

        def step() -> float:
            current = state["next"]
            state["next"] = min(self.maximum, current * self.factor)
            return current * (1 + random.uniform(-self.jitter, self.jitter))

        return step


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    backoff: Backoff,
    timeout: float | None = None,
    on_update: Callable[[T], None] | None = None,
    what: str = "operation",
    hint: str = "it keeps running; check again later",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fetch`` until ``done(value)``; raise :class:`WaitTimeout` after ``timeout`` seconds.

    ``on_update`` sees every fetched value, the last one included. The final value is returned.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    next_interval = backoff.intervals()
    while True:
        value = fetch()
        if on_update is not None:
            on_update(value)
        if done(value):
            return value
        pause = next_interval()
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"{what} still not finished after {timeout:.0f} s; {hint}")
            pause = min(pause, remaining)
        sleep(pause)
