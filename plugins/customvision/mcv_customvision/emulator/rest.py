"""A small REST service layer for the Custom Vision emulator: key check, faults, handler, call log, answer.

The kit's :class:`multicloud_cv.emulation.service.JsonService` speaks AWS JSON 1.1; Custom Vision is REST
(paths with parameters, query strings, JSON or multipart bodies), so this module gives the same guarantees for
REST operations. :meth:`RestService.handle` serves one call of an :class:`Operation`:

1. the API key: the ``Training-key`` header for the training API, ``Prediction-key`` for the prediction API
   (header names are case-insensitive); a missing or wrong key (a training key on the prediction API included)
   is HTTP 401 with the gateway's body (:data:`.texts.ACCESS_DENIED`);
2. a pending fault of the operation (:class:`multicloud_cv.emulation.faults.FaultBook`): ``delay`` waits, an
   error answers instead of the handler. HTTP 429 is the gateway's throttling answer with a ``Retry-After``
   header (``Fault.retry_after``, 1 s when not given) and the quota text; other statuses take the code of the
   API's :class:`~multicloud_cv.emulation.faults.ErrorCatalogue` (``Retry-After`` too when the fault has one);
3. the handler: it returns the JSON payload (answered with the operation's status), a :class:`Reply` (another
   status, raw bytes) or raises :class:`.texts.CvError` (``{"code", "message"}``); any other exception is an
   emulator bug, logged and answered HTTP 500 ``ErrorUnknown``;
4. an after-effect fault answers its error once the handler has run.

Every call is logged as ``{"operation", "method", "path", "query", "status"}`` (:meth:`RestService.calls`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcv_customvision.emulator.texts import (
    ACCESS_DENIED,
    PREDICTION_CATALOGUE,
    TRAINING_CATALOGUE,
    CvError,
    gateway_body,
    throttled_message,
)
from multicloud_cv.emulation.faults import Fault, FaultBook

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, str], bytes]
"""HTTP status, headers, body."""

JSON = "application/json; charset=utf-8"
TRAINING = "training"
PREDICTION = "prediction"


@dataclass
class Request:
    """One call as the handlers see it: path parameters, query (first value of each name), headers, body."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    content_type: str = ""
    query_string: str = ""

    def text(self, name: str, default: str | None = None) -> str | None:
        """A query parameter (``default`` when absent)."""
        return self.query.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as msrest serialises it (``true``/``false``)."""
        value = self.query.get(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise CvError("BadRequestInvalid", f"The query parameter '{name}' must be true or false, not '{value}'.")

    def number(self, name: str, default: float | None = None) -> float | None:
        """A float query parameter."""
        value = self.query.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except ValueError:
            message = f"The query parameter '{name}' must be a number, not '{value}'."
            raise CvError("BadRequestInvalid", message) from None

    def ids(self, name: str) -> list[str]:
        """A comma-separated list query parameter (msrest's ``div=','``)."""
        value = self.query.get(name) or ""
        return [part.strip() for part in value.split(",") if part.strip()]

    def json(self) -> Any:
        """The body as JSON; ``BadRequest`` when it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise CvError("BadRequest", f"The request body is not valid JSON: {exc}") from exc


@dataclass
class Reply:
    """A handler's answer other than plain JSON with the operation's status."""

    status: int
    payload: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Any]


@dataclass(frozen=True)
class Operation:
    """A REST operation: its id (PascalCase of the SDK method), method, path under the API's base, API and
    handler; ``status`` is the status of a plain answer (204: no body)."""

    name: str
    method: str
    path: str
    api: str
    handler: Handler
    status: int = 200


class RestService:
    """Base of the emulated REST service (see the module docstring). Thread-safe."""

    def __init__(self, faults: FaultBook, closing: threading.Event, keys: Mapping[str, str], tier: str) -> None:
        self.faults = faults
        self.closing = closing
        self.keys = dict(keys)
        self.tier = tier
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --------------------------------------------------------------------------------------- plumbing

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Calls received so far, in order (only ``operation``'s when given)."""
        with self._lock:
            return [dict(c) for c in self._calls if operation is None or c["operation"] == operation]

    def _record(self, operation: str, request: Request, status: int) -> None:
        entry = {
            "operation": operation,
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "status": status,
        }
        with self._lock:
            self._calls.append(entry)

    def start_thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Run ``target`` in a named daemon thread that :meth:`join` waits for."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def join(self, timeout: float) -> list[str]:
        """Wait for the runner threads (after :attr:`closing` is set); the names of those still running."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]

    # ---------------------------------------------------------------------------------------- answers

    @staticmethod
    def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        return status, {"Content-Type": JSON, **(headers or {})}, json.dumps(payload).encode()

    def _fault_answer(self, fault: Fault, operation: Operation, request: Request) -> Answer:
        code = fault.error
        if fault.status == 429 or code == "429":
            seconds = 1.0 if fault.retry_after is None else float(fault.retry_after)
            message = fault.message or throttled_message(operation.name, operation.api, self.tier, seconds)
            return self.json_answer(429, gateway_body(429, message), {"Retry-After": f"{seconds:g}"})
        catalogue = PREDICTION_CATALOGUE if operation.api == PREDICTION else TRAINING_CATALOGUE
        error = fault.api_error(operation.name, dict(request.query), catalogue)
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        return self.json_answer(error.status, {"code": error.code, "message": error.message}, headers)

    def _key_ok(self, operation: Operation, request: Request) -> bool:
        header = "training-key" if operation.api == TRAINING else "prediction-key"
        given = request.headers.get(header)
        return given is not None and given == self.keys[operation.api]

    # ---------------------------------------------------------------------------------------- serving

    def handle(self, operation: Operation, request: Request) -> Answer:
        """Serve one call (see the module docstring)."""
        answer = self._serve(operation, request)
        self._record(operation.name, request, answer[0])
        return answer

    def _serve(self, operation: Operation, request: Request) -> Answer:
        if not self._key_ok(operation, request):
            return self.json_answer(401, gateway_body(401, ACCESS_DENIED))
        try:
            fault = self.faults.take(operation.name, after_effect=False)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.raises:
                    return self._fault_answer(fault, operation, request)
            result = operation.handler(request)
            fault = self.faults.take(operation.name, after_effect=True)
            if fault is not None:
                return self._fault_answer(fault, operation, request)
        except CvError as error:
            log.debug("%s -> %s", operation.name, error)
            return self.json_answer(error.status, error.payload())
        except Exception as exc:  # an emulator bug: answer as the service's unknown error would
            log.exception("%s failed inside the emulator", operation.name)
            return self.json_answer(500, {"code": "ErrorUnknown", "message": f"The emulator failed: {exc!r}"})
        if isinstance(result, Reply):
            if result.body is not None:
                return result.status, dict(result.headers), result.body
            if result.status == 204:
                return 204, dict(result.headers), b""
            return self.json_answer(result.status, result.payload, result.headers)
        if operation.status == 204:
            return 204, {}, b""
        return self.json_answer(operation.status, result)
