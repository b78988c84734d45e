"""The HTTP side of the Custom Vision emulator: one Starlette app on one port (uvicorn in a thread, 127.0.0.1).

Routes:

* ``/customvision/v3.4-preview/training/...`` and ``/customvision/v3.1/prediction/...``: the operations of
  :meth:`.service.CustomVisionService.operations`, each served in Starlette's thread pool by
  :meth:`.rest.RestService.handle` (key check, faults, handler, call log);
* ``/_emulator/...``: the kit's administration routes (:func:`multicloud_cv.emulation.server.admin_routes`:
  ``POST``/``DELETE /_emulator/faults``, ``GET /_emulator/calls[?operation=X]``, ``GET /_emulator/health``,
  ``POST /_emulator/fail-next-iteration`` with ``{"reason": "..."}``), plus ``GET
  /_emulator/exports/<id>.zip`` (an export's archive, no key: like the service's SAS download URI) and ``GET
  /_emulator/images/<id>`` (a training image, the Image URIs);
* anything else: 404 with the gateway's ``{"error": {"code": "404", "message": "Resource not found"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcv_customvision.emulator.rest import PREDICTION, Operation, Request
from mcv_customvision.emulator.service import PREDICTION_BASE, TRAINING_BASE
from mcv_customvision.emulator.texts import NOT_FOUND_RESOURCE, gateway_body
from multicloud_cv.emulation.server import admin_routes, json_response

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response
    from starlette.routing import Route

    from mcv_customvision.emulator.service import CustomVisionService


def _route(service: CustomVisionService, operation: Operation) -> Route:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    base = PREDICTION_BASE if operation.api == PREDICTION else TRAINING_BASE

    async def endpoint(http: HttpRequest) -> Response:
        request = Request(
            method=http.method,
            path=http.url.path,
            params={k: str(v) for k, v in http.path_params.items()},
            query={k: http.query_params[k] for k in http.query_params},
            headers=http.headers,
            body=await http.body(),
            content_type=http.headers.get("content-type", ""),
            query_string=http.url.query,
        )
        status, headers, body = await run_in_threadpool(service.handle, operation, request)
        media = headers.pop("Content-Type", None)
        return Response(content=body, status_code=status, headers=headers, media_type=media)

    return Route(base + operation.path, endpoint, methods=[operation.method], name=operation.name)


def build_app(service: CustomVisionService, admin: Any) -> Starlette:
    """The Starlette app serving ``service`` (and ``admin``: the emulator, for the administration routes)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def export_zip(http: HttpRequest) -> Response:
        path = service.export_file(str(http.path_params["export_id"]))
        if path is None or not path.is_file():
            return json_response(404, gateway_body(404, NOT_FOUND_RESOURCE))
        return FileResponse(path, media_type="application/zip", filename=path.name)

    async def image(http: HttpRequest) -> Response:
        path = service.image_file(str(http.path_params["image_id"]))
        if path is None or not path.is_file():
            return json_response(404, gateway_body(404, NOT_FOUND_RESOURCE))
        return FileResponse(path)

    async def not_found(_http: HttpRequest, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = NOT_FOUND_RESOURCE if status == 404 else str(getattr(exc, "detail", "Method not allowed"))
        return json_response(status, gateway_body(status, message))

    routes = [
        *(_route(service, op) for op in service.operations()),
        *admin_routes(admin, service, ("fail-next-iteration", "reason", admin.fail_next_iteration)),
        Route("/_emulator/exports/{export_id}.zip", export_zip, methods=["GET"]),
        Route("/_emulator/images/{image_id}", image, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
