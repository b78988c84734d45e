"""Injected faults of an emulated service: errors, after-effect errors, delays, slow resources, failed jobs.

A :class:`Fault` applies to the next ``times`` requests of one operation (``None``: any operation) and is
used up as it fires. Kinds:

* ``error`` and/or ``status``: the request is answered with that error instead of being served. A bare
  ``status`` picks the service's code for it from the :class:`ErrorCatalogue` (500: the internal error,
  503: unavailable, 429: throttling ...); a bare ``error`` takes the catalogue's HTTP status and message
  for it. With ``after_effect=True`` the request is served first and the error is answered afterwards (the
  resource exists, the client sees the error: a retry then meets the service's "already exists" answer).
* ``delay``: the answer waits this many seconds (client read timeouts).
* ``slow``: the resource the request creates walks its states at ``pace * slow``.
* ``retry_after`` (optional, seconds): for emulators whose service sends a ``Retry-After`` header with
  throttling or unavailability answers (Custom Vision); the AWS JSON 1.1 emulators ignore it.

Besides faults, the book queues job failures (:meth:`FaultBook.fail_next`): the next job the service
creates ends failed with that reason (SageMaker's FailureReason, Rekognition's StatusMessage).

botocore retries throttling codes (``ThrottlingException``, ``ProvisionedThroughputExceededException`` ...)
and HTTP 500/502/503/504 (its ``_retry.json`` and the standard retry mode), so a few injected faults are
absorbed by the client; more than its attempts are not.

Testing-grade code (see :mod:`multicloud_cv.emulation`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multicloud_cv.emulation.protocol import ApiError

MessageHook = Callable[[str, str, dict[str, Any]], "str | None"]
"""``(code, operation, request params) -> message`` for codes whose text depends on the request."""


@dataclass(frozen=True)
class ErrorCatalogue:
    """How a service words an injected error: HTTP status and message per code, code per bare status.

    ``by_status`` maps a bare HTTP status to the service's code (unlisted 5xx: ``server_default``,
    unlisted 4xx: ``client_default``); ``status`` maps a code to its HTTP status (unlisted: 400);
    ``messages`` gives each code's text (unlisted: ``Injected fault: <code>``) unless ``describe``
    returns one for the request.
    """

    status: Mapping[str, int] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)
    by_status: Mapping[int, str] = field(default_factory=dict)
    server_default: str = "InternalFailure"
    client_default: str = "ValidationException"
    describe: MessageHook | None = None

    def error(self, fault: Fault, operation: str, params: dict[str, Any]) -> ApiError:
        """The :class:`ApiError` that ``fault`` answers to ``operation`` called with ``params``."""
        status = fault.status
        code = fault.error
        if code is None:
            wanted = int(status or 500)
            code = self.by_status.get(wanted, self.server_default if wanted >= 500 else self.client_default)
        if status is None:
            status = self.status.get(code, 400)
        message = fault.message
        if message is None and self.describe is not None:
            message = self.describe(code, operation, params)
        if message is None:
            message = self.messages.get(code, f"Injected fault: {code}")
        return ApiError(code, message, status=status)


@dataclass
class Fault:
    """One injected fault (see the module docstring)."""

    operation: str | None = None
    error: str | None = None
    status: int | None = None
    message: str | None = None
    times: int = 1
    after_effect: bool = False
    delay: float = 0.0
    slow: float | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError(f"times must be at least 1, got {self.times}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400..599), got {self.status}")
        if self.error is None and self.status is None and not self.delay and self.slow is None:
            raise ValueError("a fault needs error=, status=, delay= or slow=")
        if self.slow is not None and self.slow <= 0:
            raise ValueError(f"slow must be a positive factor, got {self.slow}")
        if self.delay < 0:
            raise ValueError(f"delay must not be negative, got {self.delay}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must not be negative, got {self.retry_after}")

    @property
    def raises(self) -> bool:
        """True when the fault answers an error."""
        return self.error is not None or self.status is not None

    def api_error(self, operation: str, params: dict[str, Any], catalogue: ErrorCatalogue) -> ApiError:
        """The error this fault answers to ``operation``, worded by the service's ``catalogue``."""
        return catalogue.error(self, operation, params)


class FaultBook:
    """The pending faults and queued job failures, thread-safe; each fault fires until its ``times`` are used."""

    def __init__(self, catalogue: ErrorCatalogue | None = None) -> None:
        self.catalogue = catalogue or ErrorCatalogue()
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._failures: list[str] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault (faults fire in the order added)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault and queued job failure."""
        with self._lock:
            self._faults.clear()
            self._failures.clear()

    def take(self, operation: str, after_effect: bool) -> Fault | None:
        """The first pending fault for ``operation`` of the given timing, used once (``None`` when none)."""
        with self._lock:
            for fault in self._faults:
                if fault.operation not in (None, operation):
                    continue
                if fault.slow is not None and not fault.raises and not fault.delay:
                    continue  # slow-state faults are taken by take_slow
                if fault.raises and fault.after_effect != after_effect:
                    continue
                if not fault.raises and after_effect:
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def take_slow(self, operation: str) -> float:
        """The pace factor for the resource ``operation`` creates (1.0 when no slow fault is pending)."""
        with self._lock:
            for fault in self._faults:
                if fault.operation in (None, operation) and fault.slow is not None and not fault.raises:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return float(fault.slow)
        return 1.0

    def error(self, fault: Fault, operation: str, params: dict[str, Any]) -> ApiError:
        """The error ``fault`` answers, in the words of this book's catalogue."""
        return fault.api_error(operation, params, self.catalogue)

    def fail_next(self, reason: str) -> None:
        """The next job the service creates ends failed with ``reason``."""
        with self._lock:
            self._failures.append(reason)

    def next_failure(self) -> str | None:
        """The queued failure for a job being created, used once."""
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def pending(self) -> list[Fault]:
        """A copy of the pending faults (for the admin route and tests)."""
        with self._lock:
            return [Fault(**vars(f)) for f in self._faults]
