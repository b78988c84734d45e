"""The HTTP side of the emulator: one Starlette app, served by uvicorn in a thread on 127.0.0.1.

Routes (control plane and runtime share one port, as ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` may point at the same URL):

* ``POST /`` - the control plane, AWS JSON 1.1 (``X-Amz-Target: SageMaker.<Operation>``), and the Service
  Quotas API for SageMaker's instance quotas (``ServiceQuotasV20190624.<Operation>``, :mod:`.quotas`);
* ``POST /endpoints/{EndpointName}/invocations`` - InvokeEndpoint, REST-JSON with a raw body;
* ``POST /endpoints/{EndpointName}/async-invocations`` and ``.../invocations-response-stream`` - 501;
* ``/_emulator/...`` - administration for a separately started emulator (``mcv emulate sagemaker``):
  ``POST /_emulator/faults`` (JSON: the fields of :class:`.faults.Fault`), ``DELETE /_emulator/faults``,
  ``POST /_emulator/fail-next-training-job`` (``{"reason": ...}``), ``POST /_emulator/quotas``
  (``{"instance_type", "usage", "limit"}``), ``GET /_emulator/calls[?operation=X]``,
  ``GET /_emulator/logs/{kind}/{name}``, ``GET /_emulator/health``.

Blocking work (S3 calls, inference) runs in Starlette's thread pool, never on the event loop.
:class:`ServerThread` binds the socket itself (port 0 picks a free one), so the port is known before
uvicorn starts, and stops uvicorn by setting ``should_exit``; uvicorn skips signal handlers off the main
thread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from mcv_sagemaker.emulator.control import ControlPlane

log = logging.getLogger(__name__)


def _response(status: int, headers: dict[str, str], body: bytes) -> Response:
    from starlette.responses import Response

    headers = {**headers, "x-amzn-RequestId": str(uuid.uuid4())}
    media = headers.pop("Content-Type", None)
    return Response(content=body, status_code=status, headers=headers, media_type=media)


def _json(status: int, payload: Any) -> Response:
    return _response(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def build_app(control: ControlPlane, admin: Any) -> Starlette:
    """The Starlette app serving ``control`` (and ``admin``: the :class:`SageMakerEmulator` for admin routes)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    async def control_plane(request: Request) -> Response:
        body = await request.body()
        target = request.headers.get("x-amz-target", "")
        status, headers, payload = await run_in_threadpool(control.handle, target, body)
        return _response(status, headers, payload)

    async def invocations(request: Request) -> Response:
        body = await request.body()
        name = request.path_params["name"]
        status, headers, payload = await run_in_threadpool(
            control.invoke,
            name,
            body,
            request.headers.get("content-type", ""),
            request.headers.get("accept", ""),
        )
        return _response(status, headers, payload)

    async def not_implemented(request: Request) -> Response:
        control.record("InvokeEndpointAsync" if "async" in request.url.path else "InvokeEndpointWithResponseStream")
        return _response(
            501,
            {"Content-Type": "application/json", "x-amzn-ErrorType": "NotImplementedException"},
            json.dumps({"message": "The SageMaker emulator implements InvokeEndpoint only."}).encode(),
        )

    async def add_fault(request: Request) -> Response:
        try:
            fields = json.loads(await request.body() or b"{}")
            admin.inject(**fields)
        except (ValueError, TypeError) as exc:
            return _json(400, {"message": f"bad fault: {exc}"})
        return _json(200, {"pending": len(admin.faults.pending())})

    async def clear_faults(_request: Request) -> Response:
        admin.faults.clear()
        return _json(200, {"pending": 0})

    async def fail_next(request: Request) -> Response:
        try:
            reason = str(json.loads(await request.body() or b"{}")["reason"])
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"message": f'send {{"reason": "..."}}: {exc}'})
        admin.fail_next_training_job(reason)
        return _json(200, {"queued": reason})

    async def quotas(request: Request) -> Response:
        try:
            fields = json.loads(await request.body() or b"{}")
            limit = fields["limit"]
            admin.set_quota(
                str(fields["instance_type"]),
                str(fields.get("usage", "training job")),
                None if limit is None else int(limit),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"message": f'send {{"instance_type", "usage", "limit"}}: {exc}'})
        return _json(200, {"quotas": control.quotas.changed()})

    async def calls(request: Request) -> Response:
        return _json(200, {"calls": control.calls(request.query_params.get("operation"))})

    async def logs(request: Request) -> Response:
        key = f"{request.path_params['kind']}/{request.path_params['name']}"
        if key not in control.logs:
            return _json(404, {"message": f"no logs for {key}"})
        return _json(200, {"lines": list(control.logs[key])})

    async def health(_request: Request) -> Response:
        return _json(200, {"status": "ok", "region": control.region, "environment": admin.environment()})

    routes = [
        Route("/", control_plane, methods=["POST"]),
        Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{name}/async-invocations", not_implemented, methods=["POST"]),
        Route("/endpoints/{name}/invocations-response-stream", not_implemented, methods=["POST"]),
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/fail-next-training-job", fail_next, methods=["POST"]),
        Route("/_emulator/quotas", quotas, methods=["POST"]),
        Route("/_emulator/calls", calls, methods=["GET"]),
        Route("/_emulator/logs/{kind}/{name}", logs, methods=["GET"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes)


class ServerThread:
    """uvicorn serving an ASGI app on ``host:port`` in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
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
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="sagemaker-emulator-http", daemon=True
        )

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
