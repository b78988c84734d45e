"""The HTTP side of the Vertex AI emulator: one Starlette app on one port (uvicorn in a thread, 127.0.0.1).

Routes:

* ``/v1/...`` and ``/ui/...``: every path goes to :meth:`.rest.RestService.handle` in Starlette's thread pool
  (the service matches its own routes: Google paths hold ``:verb`` suffixes Starlette's router does not split);
* ``/_emulator/...``: the kit's administration routes (:func:`multicloud_cv.emulation.server.admin_routes`:
  ``POST``/``DELETE /_emulator/faults``, ``GET /_emulator/calls[?operation=X]``, ``GET /_emulator/health``) and
  ``POST /_emulator/fail-next-job`` with ``{"message": "...", "code": 8}`` (code optional, 13 by default).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from multicloud_cv.emulation.server import admin_routes, json_response

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from mcv_vertex.emulator.service import VertexService


def build_app(service: VertexService, admin: Any) -> Starlette:
    """The Starlette app serving ``service`` (``admin``: the emulator, for the administration routes)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    async def api(http: Request) -> Response:
        body = await http.body()
        query = {k: http.query_params[k] for k in http.query_params}
        status, headers, payload = await run_in_threadpool(service.handle, http.method, http.url.path, query, body)
        media = headers.pop("Content-Type", None)
        return Response(content=payload, status_code=status, headers=headers, media_type=media)

    async def fail_next_job(http: Request) -> Response:
        try:
            fields = json.loads(await http.body() or b"{}")
            admin.fail_next_job(message=str(fields["message"]), code=int(fields.get("code", 13)))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response(400, {"message": f'send {{"message": "...", "code": 8}}: {exc}'})
        return json_response(200, {"queued": fields["message"]})

    routes = [
        *admin_routes(admin, service),
        Route("/_emulator/fail-next-job", fail_next_job, methods=["POST"]),
        Route("/{path:path}", api, methods=["GET", "POST", "DELETE", "PATCH", "PUT"]),
    ]
    return Starlette(routes=routes)
