"""The HTTP side of the SageMaker emulator: one Starlette app on one port (uvicorn in a thread, 127.0.0.1).

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

The server thread, the JSON 1.1 route and the common administration routes are the shared
:mod:`multicloud_cv.emulation.server`. Blocking work (S3 calls, inference) runs in Starlette's thread
pool, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from multicloud_cv.emulation.server import ServerThread, admin_routes, control_route, json_response, response

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from mcv_sagemaker.emulator.control import ControlPlane

__all__ = ["ServerThread", "build_app"]

log = logging.getLogger(__name__)


def build_app(control: ControlPlane, admin: Any) -> Starlette:
    """The Starlette app serving ``control`` (and ``admin``: the :class:`SageMakerEmulator` for admin routes)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

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
        return response(status, headers, payload)

    async def not_implemented(request: Request) -> Response:
        control.record("InvokeEndpointAsync" if "async" in request.url.path else "InvokeEndpointWithResponseStream")
        return response(
            501,
            {"Content-Type": "application/json", "x-amzn-ErrorType": "NotImplementedException"},
            json.dumps({"message": "The SageMaker emulator implements InvokeEndpoint only."}).encode(),
        )

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
            return json_response(400, {"message": f'send {{"instance_type", "usage", "limit"}}: {exc}'})
        return json_response(200, {"quotas": control.quotas.changed()})

    async def logs(request: Request) -> Response:
        key = f"{request.path_params['kind']}/{request.path_params['name']}"
        if key not in control.logs:
            return json_response(404, {"message": f"no logs for {key}"})
        return json_response(200, {"lines": list(control.logs[key])})

    routes = [
        control_route(control),
        Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{name}/async-invocations", not_implemented, methods=["POST"]),
        Route("/endpoints/{name}/invocations-response-stream", not_implemented, methods=["POST"]),
        *admin_routes(admin, control, ("fail-next-training-job", "reason", admin.fail_next_training_job)),
        Route("/_emulator/quotas", quotas, methods=["POST"]),
        Route("/_emulator/logs/{kind}/{name}", logs, methods=["GET"]),
    ]
    return Starlette(routes=routes)
