"""One emulated AWS JSON 1.1 service: from ``X-Amz-Target`` and a body to an answer.

:meth:`JsonService.handle` serves one call: record it, apply pending faults (:mod:`.faults`), decode and
validate the body against botocore's model (:mod:`.protocol`), run the owner's ``_op_<Operation>``, apply
after-effect faults, check the answer against the output shape, encode it. Contracts:

* A target whose prefix no :class:`Target` claims, or an operation the service model does not know,
  answers ``UnknownOperationException`` (HTTP 400), as AWS's JSON front end does.
* An operation the model knows but the emulator does not implement answers HTTP 501
  ``NotImplementedException`` naming the implemented operations, so a gap is never mistaken for a
  service error.
* An exception inside a handler is an emulator bug: it is logged with its traceback and answered as the
  service's internal error (HTTP 500, :attr:`JsonService.internal_error`); an answer that does not match
  botocore's output shape is answered the same way, so a test sees the bug at once.

Subclasses set :attr:`~JsonService.product` (for texts), :attr:`~JsonService.validation_error` (the
service's code for bad parameters), :attr:`~JsonService.internal_error`, optionally
:attr:`~JsonService.message_key` (``message`` or ``Message`` in error bodies), and return their targets
from :meth:`~JsonService.targets`. :meth:`~JsonService._start` runs background work (state walks,
training) in named daemon threads that :meth:`~JsonService.join` waits for at shutdown.

Testing-grade code (see :mod:`multicloud_cv.emulation`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from multicloud_cv.emulation import protocol
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.protocol import ApiError

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, str], bytes]
"""HTTP status, headers, body."""

JSON_11 = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Target:
    """An ``X-Amz-Target`` prefix (``SageMaker.``), its botocore service name, the object holding its
    ``_op_<Operation>`` methods and the names of the operations implemented (for the 501 text)."""

    prefix: str
    service: str
    owner: Any
    operations: tuple[str, ...]


class JsonService:
    """Base of an emulated AWS JSON 1.1 service (see the module docstring). Thread-safe."""

    product = "AWS"
    validation_error = protocol.VALIDATION_EXCEPTION
    internal_error = "InternalFailure"
    message_key = "message"

    def __init__(self, faults: FaultBook, closing: threading.Event) -> None:
        self.faults = faults
        self.closing = closing
        self._calls: list[str] = []
        self._calls_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def targets(self) -> list[Target]:
        """The targets this service answers (subclasses return theirs)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- plumbing

    def record(self, operation: str) -> None:
        """Note an operation received (for :meth:`calls`)."""
        with self._calls_lock:
            self._calls.append(operation)

    def calls(self, operation: str | None = None) -> list[str]:
        """Operations received so far, in order (only ``operation``'s when given)."""
        with self._calls_lock:
            return [c for c in self._calls if operation is None or c == operation]

    def _start(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Run ``target`` in a named daemon thread that :meth:`join` waits for."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._calls_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def join(self, timeout: float) -> list[str]:
        """Wait for the runner threads (after :attr:`closing` is set); the names of those still running."""
        deadline = time.monotonic() + timeout
        with self._calls_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive()]

    @staticmethod
    def _json(status: int, payload: dict[str, Any]) -> Answer:
        return status, {"Content-Type": JSON_11}, json.dumps(payload).encode()

    def error_body(self, error: ApiError) -> dict[str, Any]:
        """The JSON body of an error answer (``__type``, the message under :attr:`message_key`, fields)."""
        return error.body(self.message_key)

    def _error(self, error: ApiError) -> Answer:
        return self._json(error.status, self.error_body(error))

    def _route(self, target: str) -> tuple[Target | None, str]:
        for candidate in self.targets():
            if target.startswith(candidate.prefix):
                return candidate, target[len(candidate.prefix) :]
        return None, ""

    # ------------------------------------------------------------------------------------------ serving

    def handle(self, target: str, body: bytes) -> Answer:
        """Serve one JSON 1.1 call; ``target`` is the ``X-Amz-Target`` header."""
        route, operation = self._route(target)
        self.record(operation or target or "(none)")
        op = protocol.operation_model(operation, route.service) if route is not None and operation else None
        if route is None or op is None:
            return self._error(
                ApiError("UnknownOperationException", f"Unknown operation: X-Amz-Target {target or '(missing)'}")
            )
        handler = getattr(route.owner, f"_op_{operation}", None)
        if handler is None:
            return self._error(
                ApiError(
                    "NotImplementedException",
                    f"The {self.product} emulator does not implement {operation}; it implements "
                    f"{', '.join(route.operations)}.",
                    status=501,
                )
            )
        try:
            fault = self.faults.take(operation, after_effect=False)
            raw: dict[str, Any] = {}
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.raises:
                    raise self.faults.error(fault, operation, protocol.loads_body(body))
            raw = protocol.loads_body(body)
            params = protocol.decode_wire(op.input_shape, raw)
            protocol.validate_request(op, params, self.validation_error)
            result = handler(params)
            fault = self.faults.take(operation, after_effect=True)
            if fault is not None:
                raise self.faults.error(fault, operation, raw)
        except ApiError as error:
            log.debug("%s -> %s", operation, error)
            return self._error(error)
        except Exception as exc:  # an emulator bug: answer as the service's internal failure would
            log.exception("%s failed inside the emulator", operation)
            return self._error(ApiError(self.internal_error, f"The emulator failed: {type(exc).__name__}: {exc}", 500))
        problems = protocol.check_response(op, result)
        if problems:
            log.error("%s answer does not match botocore's output shape: %s", operation, problems)
            return self._error(
                ApiError(self.internal_error, f"Emulator answer does not match the model: {problems}", 500)
            )
        return self._json(200, protocol.encode_wire(result))
