"""SageMaker's wire protocol: the shared AWS JSON 1.1 kit bound to SageMaker's models and error codes.

Contracts (cloud-apis.md 1.1, 1.2; botocore ``parsers.py``); the generic machinery is
:mod:`multicloud_cv.emulation.protocol`:

* The control plane is AWS JSON 1.1: ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>`` and a JSON
  body. Errors are HTTP 400 (or 5xx) with ``{"__type": "<Code>", "message": "..."}``.
* The runtime is REST-JSON: errors carry the code in the ``x-amzn-ErrorType`` header as well.
* Every request is checked against botocore's ``sagemaker`` (and ``sagemaker-runtime``) model; bad
  parameters are ``ValidationException`` with botocore's report or the service's constraint text.
"""

from __future__ import annotations

from typing import Any

from multicloud_cv.emulation.protocol import (
    ApiError,
    check_response,
    constraint_problems,
    decode_wire,
    encode_wire,
    timestamp,
    validate_request,
)
from multicloud_cv.emulation.protocol import missing_member as _missing_member
from multicloud_cv.emulation.protocol import operation_model as _operation_model
from multicloud_cv.emulation.protocol import service_model as _service_model

__all__ = [
    "CONTROL_SERVICE",
    "RUNTIME_SERVICE",
    "TARGET_PREFIX",
    "ApiError",
    "check_response",
    "constraint_problems",
    "decode_wire",
    "encode_wire",
    "missing_member",
    "operation_model",
    "resource_in_use",
    "resource_not_found",
    "service_model",
    "timestamp",
    "validate_request",
    "validation_error",
]

#: Service model names in botocore.
CONTROL_SERVICE = "sagemaker"
RUNTIME_SERVICE = "sagemaker-runtime"
TARGET_PREFIX = "SageMaker."


def validation_error(message: str) -> ApiError:
    """``ValidationException`` (HTTP 400): the request is wrong."""
    return ApiError("ValidationException", message)


def resource_in_use(message: str) -> ApiError:
    """``ResourceInUse`` (HTTP 400): a resource of that name exists."""
    return ApiError("ResourceInUse", message)


def resource_not_found(message: str) -> ApiError:
    """``ResourceNotFound`` (HTTP 400)."""
    return ApiError("ResourceNotFound", message)


def service_model(name: str = CONTROL_SERVICE) -> Any:
    """botocore's :class:`ServiceModel` for ``sagemaker`` or ``sagemaker-runtime`` (loaded once)."""
    return _service_model(name)


def operation_model(name: str, service: str = CONTROL_SERVICE) -> Any | None:
    """The operation's model, ``None`` when the service has no such operation."""
    return _operation_model(name, service)


def missing_member(path: str) -> ApiError:
    """The service's text for a member the API needs although the model marks it optional."""
    return _missing_member(path)
