"""The HTTP side of an emulator: Starlette routes served by uvicorn in a thread on 127.0.0.1.

* :func:`control_route` - ``POST /``: the AWS JSON 1.1 control plane (``X-Amz-Target``), answered by a
  :class:`~multicloud_cv.emulation.service.JsonService` in Starlette's thread pool (blocking work such as
  S3 calls and inference never runs on the event loop).
* :func:`admin_routes` - ``/_emulator/...``, the administration of a separately started emulator (``mcv
  emulate <provider>``): ``POST /_emulator/faults`` (JSON: the fields of :class:`.faults.Fault`),
  ``DELETE /_emulator/faults``, ``GET /_emulator/calls[?operation=X]``, ``GET /_emulator/health`` and,
  when the emulator queues job failures, ``POST /_emulator/<fail path>`` with ``{"<key>": "..."}``.
* :class:`ServerThread` binds the socket itself (port 0 picks a free one), so the port is known before
  uvicorn starts, and stops uvicorn by setting ``should_exit``; uvicorn skips signal handlers off the main
  thread.

Testing-grade code (see :mod:`multicloud_cv.emulation`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from multicloud_cv.emulation.service import JsonService

log = logging.getLogger(__name__)


class CallLog(Protocol):
    """What the ``/_emulator/calls`` route reads: a :class:`~multicloud_cv.emulation.service.JsonService` or
    any other emulated service keeping a log of the calls it received (REST emulators log dicts)."""

    def calls(self, operation: str | None = None) -> list[Any]:
        """The calls received, in order (only ``operation``'s when given)."""
        ...


def response(status: int, headers: dict[str, str], body: bytes) -> Response:
    """A Starlette response with an ``x-amzn-RequestId`` header (``Content-Type`` taken from ``headers``)."""
    from starlette.responses import Response

    headers = {**headers, "x-amzn-RequestId": str(uuid.uuid4())}
    media = headers.pop("Content-Type", None)
    return Response(content=body, status_code=status, headers=headers, media_type=media)


def json_response(status: int, payload: Any) -> Response:
    """A JSON response (administration routes)."""
    return response(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def control_route(service: JsonService) -> Route:
    """``POST /``: JSON 1.1 calls answered by ``service`` in the thread pool."""
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    async def control_plane(request: Request) -> Response:
        body = await request.body()
        target = request.headers.get("x-amz-target", "")
        status, headers, payload = await run_in_threadpool(service.handle, target, body)
        return response(status, headers, payload)

    return Route("/", control_plane, methods=["POST"])


def admin_routes(
    admin: Any,
    service: CallLog,
    fail_next: tuple[str, str, Callable[[str], None]] | None = None,
) -> list[Route]:
    """The ``/_emulator`` routes of ``admin`` (an emulator with ``inject``, ``faults``, ``region`` and
    ``environment()``) and ``service`` (anything with ``calls(operation)``); ``fail_next`` is
    ``(path, JSON key, callable)`` for queued job failures."""
    from starlette.routing import Route

    async def add_fault(request: Request) -> Response:
        try:
            fields = json.loads(await request.body() or b"{}")
            admin.inject(**fields)
        except (ValueError, TypeError) as exc:
            return json_response(400, {"message": f"bad fault: {exc}"})
        return json_response(200, {"pending": len(admin.faults.pending())})

    async def clear_faults(_request: Request) -> Response:
        admin.faults.clear()
        return json_response(200, {"pending": 0})

    async def calls(request: Request) -> Response:
        return json_response(200, {"calls": service.calls(request.query_params.get("operation"))})

    async def health(_request: Request) -> Response:
        return json_response(200, {"status": "ok", "region": admin.region, "environment": admin.environment()})

    routes = [
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/calls", calls, methods=["GET"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]
    if fail_next is not None:
        path, key, queue = fail_next

        async def fail(request: Request) -> Response:
            try:
                reason = str(json.loads(await request.body() or b"{}")[key])
            except (ValueError, KeyError, TypeError) as exc:
                return json_response(400, {"message": f'send {{"{key}": "..."}}: {exc}'})
            queue(reason)
            return json_response(200, {"queued": reason})

        routes.append(Route(f"/_emulator/{path}", fail, methods=["POST"]))
    return routes


class ServerThread:
    """uvicorn serving an ASGI app on ``host:port`` in a daemon thread named ``name``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "emulator-http") -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name=name, daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; return once uvicorn accepts connections (``RuntimeError`` after ``timeout``)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the emulator's HTTP server exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator's HTTP server did not start within {timeout:.0f} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)
        self.sock.close()
