"""HTTP pieces both serving apps (classification and detection) share: errors, body reading, 404/405.

Every error is JSON ``{"error": "<one line>"}`` with the right status, so clients show one line.
"""

from __future__ import annotations

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
