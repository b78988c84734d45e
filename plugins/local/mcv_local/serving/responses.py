"""HTTP pieces both serving apps (classification and detection) share: errors, body reading, 404/405.

Every error is JSON ``{"error": "<one line>"}`` with the right status, so clients show one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcv_local.serving.errors import InvalidImage


def error_response(status: int, message: str) -> Any:
    """A JSON error answer."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)


def invalid_image_response(exc: InvalidImage, request: Any) -> Any:
    """400 for undecodable bytes; says what to do when the client sent a multipart form."""
    message = str(exc)
    if request.headers.get("content-type", "").startswith("multipart/"):
        message += "; send the raw image bytes as the body, not a multipart form"
    return error_response(400, message)


async def read_body(request: Any, max_body: int) -> bytes | Any:
    """The request body, or the error response to send: 413 over ``max_body``, 400 for a bad
    Content-Length or a client that went away."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_body:
                return error_response(413, f"the body is {int(declared)} bytes; the limit is {max_body} bytes")
        except ValueError:
            return error_response(400, f"invalid Content-Length header {declared!r}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return error_response(413, f"the body is larger than the limit of {max_body} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        return Response(status_code=400)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def http_error(request: Any, exc: Exception) -> Any:
    """Starlette's HTTP exceptions (unknown route, wrong method) as one-line JSON errors."""
    from starlette.responses import JSONResponse

    status = getattr(exc, "status_code", 500)
    if status == 404:
        message = f"no route {request.url.path}; use POST /v1/predict, GET /healthz or GET /v1/metadata"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(getattr(exc, "detail", "")) or f"HTTP {status}"
    return JSONResponse({"error": message}, status_code=status, headers=getattr(exc, "headers", None))


def one_model_app(
    answer: Callable[[bytes, Any, float], dict[str, Any]],
    parse_query: Callable[[Any], Any],
    health: Mapping[str, Any],
    metadata: Mapping[str, Any],
    max_body_bytes: int,
    state: Mapping[str, Any] | None = None,
) -> Any:
    """A Starlette app serving one model on one worker thread pool.

    ``POST /v1/predict``: the query parsed by ``parse_query`` (``ValueError`` -> 400), the body read within
    ``max_body_bytes`` (413), then ``answer(body, parsed, started)`` in the thread pool (``started`` is the
    request's ``perf_counter`` start, for ``latency_ms``); :class:`InvalidImage` -> 400, anything else -> 500
    with one line. ``GET /healthz`` and ``GET /v1/metadata`` answer the given documents; ``state`` goes to
    ``app.state``.
    """
    import json
    import logging
    import time

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import Response
    from starlette.routing import Route

    log = logging.getLogger(__name__)
    health_body = json.dumps(dict(health)).encode()
    metadata_body = json.dumps(dict(metadata)).encode()

    async def predict(request: Any) -> Any:
        started = time.perf_counter()
        try:
            parsed = parse_query(request.query_params)
        except ValueError as exc:
            return error_response(400, str(exc))
        body = await read_body(request, max_body_bytes)
        if not isinstance(body, bytes):
            return body  # the error answer
        try:
            result = await run_in_threadpool(answer, body, parsed, started)
        except InvalidImage as exc:
            return invalid_image_response(exc, request)
        except Exception as exc:
            log.exception("prediction failed")
            return error_response(500, f"prediction failed: {type(exc).__name__}: {exc}")
        return Response(json.dumps(result).encode(), media_type="application/json")

    async def healthz(request: Any) -> Any:
        return Response(health_body, media_type="application/json")

    async def metadata_route(request: Any) -> Any:
        return Response(metadata_body, media_type="application/json")

    app = Starlette(
        routes=[
            Route("/v1/predict", predict, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/metadata", metadata_route, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    return app
