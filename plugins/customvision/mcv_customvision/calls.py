"""One Custom Vision call: paced to the tier, retried when throttled or unavailable, its error translated.

The SDK's transport (msrest) retries connection failures and, through urllib3, some 5xx answers on some methods;
it never retries HTTP 429, which is what an F0 resource answers past 2 transactions a second ("Requests to the
CreateImagesFromData Operation ... exceeded rate limit of your current Custom_Vision.Training F0 pricing tier.
Please retry after 1 second.", pains.md A4). :class:`Caller` therefore:

* paces calls with a token bucket per API at the tier's rate (:class:`TokenBucket`; F0 2/s, S0 10/s from
  :mod:`mcv_customvision.limits`), so a long upload does not run into the limit in the first place;
* retries HTTP 429 (always: the service refused the request before doing anything) and 500/502/503/504 on reads and
  on calls that are safe to repeat (``safe=True``), up to ``max_retries`` times, sleeping the ``Retry-After``
  seconds the answer names, else an exponential backoff with jitter (1, 2, 4 ... s, at most 60 s);
* translates what is left into the project's exceptions, the service's code and message verbatim: 401 (wrong key
  or endpoint, the gateway's "Access denied due to invalid subscription key or wrong API endpoint") is a
  :class:`~multicloud_cv.errors.ConfigError` naming the setting to check, 404 :class:`~multicloud_cv.errors.NotFound`,
  other 4xx :class:`~multicloud_cv.errors.BadInput`, the rest :class:`~multicloud_cv.errors.ServiceError`.
  msrest's own client-side validation errors are BadInput.

Error bodies come in two shapes, both read: the service's ``{"code", "message"}`` and the gateway's
``{"error": {"code", "message"}}`` (401, 429).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from multicloud_cv.errors import BadInput, ConfigError, NotFound, ServiceError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_WAIT_S = 60.0


@dataclass(frozen=True)
class ServiceAnswer:
    """What an error answer said: HTTP status, the service's code and message, Retry-After seconds."""

    status: int | None
    code: str
    message: str
    retry_after: float | None = None


def read_error(exc: BaseException) -> ServiceAnswer:
    """The status, code, message and Retry-After of an msrest ``HttpOperationError`` (either body shape)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    code, message = "", ""
    text = ""
    try:
        text = response.text if response is not None else ""
        body = json.loads(text) if text else {}
    except (ValueError, AttributeError):
        body = {}
    if isinstance(body, dict):
        error = body.get("error")
        inner: dict[str, Any] = error if isinstance(error, dict) else body
        code = str(inner.get("code") or "")
        message = str(inner.get("message") or "")
    if not message:
        message = text.strip()[:300] or str(exc)
    retry_after = None
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    if raw:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    return ServiceAnswer(
        status=status, code=code or (str(status) if status else ""), message=message, retry_after=retry_after
    )


class TokenBucket:
    """At most ``rate`` calls a second on average, bursts of ``burst``; thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds slept."""
        with self._lock:  # tokens below zero are reservations of callers already sleeping
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait


class Caller:
    """Calls SDK methods for one API (training or prediction) with pacing, retries and translated errors."""

    def __init__(
        self,
        api: str,
        bucket: TokenBucket | None,
        max_retries: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.bucket = bucket
        self.max_retries = max_retries
        self._sleep = sleep
        self.retried = 0  # how many retries this caller made (reported by tests and logs)

    def __call__(self, operation: str, method: Callable[..., T], *args: Any, safe: bool = False, **kwargs: Any) -> T:
        """``method(*args, **kwargs)`` as the operation ``operation`` (its name for messages and logs)."""
        from msrest.exceptions import ClientRequestError, HttpOperationError, ValidationError

        attempt = 0
        while True:
            if self.bucket is not None:
                self.bucket.acquire()
            try:
                return method(*args, **kwargs)
            except ValidationError as exc:
                raise BadInput(f"{operation}: {exc}") from exc
            except HttpOperationError as exc:
                answer = read_error(exc)
                retryable = answer.status == 429 or (answer.status in RETRIED_STATUSES and (safe or _reads(operation)))
                if retryable and attempt < self.max_retries:
                    wait = answer.retry_after if answer.retry_after is not None else _backoff(attempt)
                    wait = min(wait, MAX_WAIT_S)
                    log.info(
                        "%s: HTTP %s %s; retrying in %.1f s (%d of %d)",
                        operation,
                        answer.status,
                        answer.code,
                        wait,
                        attempt + 1,
                        self.max_retries,
                    )
                    attempt += 1
                    self.retried += 1
                    self._sleep(wait)
                    continue
                raise self._translate(operation, answer, attempt) from exc
            except ClientRequestError as exc:
                if (safe or _reads(operation)) and attempt < self.max_retries:
                    attempt += 1
                    self.retried += 1
                    self._sleep(min(_backoff(attempt - 1), MAX_WAIT_S))
                    continue
                raise ServiceError(f"{operation}: the {self.api} endpoint could not be reached: {exc}") from exc

    def _translate(self, operation: str, answer: ServiceAnswer, attempts: int) -> Exception:
        said = (
            f"{answer.code}: {answer.message}" if answer.code and answer.code != str(answer.status) else answer.message
        )
        if answer.status == 401:
            key = "training_key" if self.api == "training" else "prediction_key"
            endpoint = "training_endpoint" if self.api == "training" else "prediction_endpoint"
            return ConfigError(
                f"{operation}: the {self.api} API refused the key ({said}); check that {key} belongs to the resource "
                f"at {endpoint} (keys and regional endpoints must match)"
            )
        if answer.status == 404:
            return NotFound(f"{operation}: {said}")
        if answer.status == 429:
            return ServiceError(
                f"{operation}: still throttled after {attempts} retries ({said}); the resource's tier limits its "
                "calls per second: wait, or use an S0 resource"
            )
        if answer.status is not None and 400 <= answer.status < 500:
            return BadInput(f"{operation}: {said}")
        return ServiceError(f"{operation}: HTTP {answer.status}: {said}")


def _reads(operation: str) -> bool:
    """Operations that change nothing (or are safe to repeat): retried on 5xx."""
    return operation.startswith(("Get", "Classify", "Detect", "QuickTest", "Unpublish", "Delete"))


def _backoff(attempt: int) -> float:
    return float(min(MAX_WAIT_S, 2.0**attempt)) * (0.5 + random.random() / 2)
