"""Vertex AI's error vocabulary: canonical codes, their HTTP statuses and google.rpc codes, and the texts.

Google APIs answer errors over REST as ``{"error": {"code": <http>, "message": "...", "status": "<CANONICAL>"}}``
(the GAPIC REST transport turns that into ``google.api_core.exceptions``), and report a failed job or
long-running operation as a ``google.rpc.Status`` ``{"code": <rpc code>, "message": "..."}``. FAILED_PRECONDITION
travels as HTTP 400, as Google's JSON mapping does. Texts quoted from reference/pains.md section 3 (V3, V4, V8)
where the service's wording is known.
"""

from __future__ import annotations

from typing import Any

from multicloud_cv.emulation.faults import ErrorCatalogue
from multicloud_cv.emulation.protocol import ApiError

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
RPC_CODE = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

CATALOGUE = ErrorCatalogue(
    status=HTTP_STATUS,
    messages={
        "RESOURCE_EXHAUSTED": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model "
        "with base model: emulated. Please submit a quota increase request.",
        "UNAVAILABLE": "The service is currently unavailable.",
        "INTERNAL": "Internal error encountered.",
        "DEADLINE_EXCEEDED": "Deadline exceeded.",
    },
    by_status={
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    },
    server_default="INTERNAL",
    client_default="INVALID_ARGUMENT",
)

PAYLOAD_LIMIT = 1_572_864
PAYLOAD_TOO_LARGE = f"Request payload size exceeds the limit: {PAYLOAD_LIMIT} bytes."
PACKAGES_ONLY = (
    "the emulator runs mcv_vertex.task packages only (python_package_spec with python_module mcv_vertex.task); "
    "container_spec and other modules are accepted by Vertex but not emulated"
)
CANCELLED_MESSAGE = "CANCELED"


def error(code: str, message: str) -> ApiError:
    """An error answer with the canonical ``code`` (``INVALID_ARGUMENT`` ...) and its HTTP status."""
    return ApiError(code, message, status=HTTP_STATUS.get(code, 400))


def invalid(message: str) -> ApiError:
    """400 INVALID_ARGUMENT."""
    return error("INVALID_ARGUMENT", message)


def precondition(message: str) -> ApiError:
    """400 FAILED_PRECONDITION."""
    return error("FAILED_PRECONDITION", message)


def not_found(name: str) -> ApiError:
    """404 NOT_FOUND for a resource name, worded as the service words it."""
    kind = name.rsplit("/", 2)[-2] if name.count("/") >= 2 else "resource"
    return error("NOT_FOUND", f'The {kind.rstrip("s")} "{name}" does not exist.' if kind else f"{name} not found.")


def body(err: ApiError) -> dict[str, Any]:
    """The JSON error body of ``err``."""
    return {"error": {"code": err.status, "message": err.message, "status": err.code}}


def rpc_status(code: str | int, message: str) -> dict[str, Any]:
    """A ``google.rpc.Status`` as JSON (for a failed job or operation)."""
    number = code if isinstance(code, int) else RPC_CODE.get(code, 2)
    return {"code": number, "message": message}


def bucket_region_mismatch(bucket: str, bucket_location: str, location: str) -> str:
    """pains.md V4's text."""
    return (
        f"The Cloud Storage bucket of gs://{bucket} is in location {bucket_location.lower()}. It must be in the "
        f"same regional location as the service location {location}."
    )
