"""The AWS JSON 1.1 wire protocol of an emulated service, read from botocore's own service models.

Contracts (botocore ``parsers.py`` and ``serialize.py``; reference/cloud-apis.md 1.1 and 2):

* The control plane is AWS JSON 1.1: ``POST /`` with ``X-Amz-Target: <TargetPrefix>.<Operation>`` and a
  JSON body. Errors are HTTP 4xx/5xx with ``{"__type": "<Code>", "message": "..."}``; botocore's JSON
  parser reads ``__type`` (the part after ``#``) and ``message`` or ``Message``.
* Every request is checked against ``botocore.session.get_session().get_service_model(<service>)``: first
  :class:`botocore.validate.ParamValidator` (unknown and missing members, types, minimum lengths and
  values), whose report text is the error message, then the constraints botocore leaves to the service
  (maximum lengths and values, enums, patterns), reported as AWS services word them: ``1 validation error
  detected: Value 'x' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular
  expression pattern: ...`` (member paths in camelCase, list items numbered from 1 as ``.1.member``). The
  error code is the service's own (SageMaker: ``ValidationException``; Rekognition, whose model has no
  ValidationException: ``InvalidParameterException``), given by the caller.
* Timestamps travel as epoch seconds (floats) in JSON 1.1; blobs as base64 strings. Answers are built with
  :class:`datetime.datetime` values, checked against the operation's output shape with the same validator
  (so every required member is present with its type), then encoded by :func:`encode_wire`.

Testing-grade code (see :mod:`multicloud_cv.emulation`): botocore is imported when first needed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

VALIDATION_EXCEPTION = "ValidationException"


class ApiError(Exception):
    """An error answer: ``code`` (the ``__type``), ``message``, HTTP ``status`` and extra body ``fields``."""

    def __init__(self, code: str, message: str, status: int = 400, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})

    def body(self, message_key: str = "message") -> dict[str, Any]:
        """The JSON error body botocore parses (``__type`` and the message, plus modeled fields)."""
        return {"__type": self.code, message_key: self.message, **self.fields}


@functools.cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@functools.cache
def service_model(name: str) -> Any:
    """botocore's :class:`ServiceModel` of ``name`` (``sagemaker``, ``rekognition`` ...), loaded once."""
    return _session().get_service_model(name)


def operation_model(name: str, service: str) -> Any | None:
    """The operation's model, ``None`` when the service has no such operation."""
    model = service_model(service)
    if name not in model.operation_names:
        return None
    return model.operation_model(name)


def loads_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (empty body: ``{}``); ``SerializationException`` otherwise."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ApiError("SerializationException", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    return value


# --------------------------------------------------------------------------------------------- input


def decode_wire(shape: Any, value: Any) -> Any:
    """Turn JSON values into the Python types botocore's validator expects (timestamps, blobs).

    Members unknown to ``shape`` are kept unchanged, so the validator still reports them.
    """
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: decode_wire(shape.members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [decode_wire(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: decode_wire(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    return value


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


@functools.cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # Java-only syntax (\p{...} and the like): the service checks it, we cannot
        return None


def constraint_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """The service-side constraint violations of ``value`` (max lengths/values, enums, patterns).

    One AWS-style phrase per problem: ``Value 'x' at 'path' failed to satisfy constraint: ...``.
    """
    if shape is None or value is None:
        return []
    problems: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    where = path or _camel(shape.name)

    def fail(rule: str) -> None:
        problems.append(f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: {rule}")

    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                child = f"{path}.{_camel(name)}" if path else _camel(name)
                problems += constraint_problems(member, value[name], child)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            fail(f"Member must have length less than or equal to {meta['max']}")
        for index, item in enumerate(value, start=1):
            problems += constraint_problems(shape.member, item, f"{where}.{index}.member")
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            fail(f"Member must have length less than or equal to {meta['max']}")
        for key, item in value.items():
            problems += constraint_problems(shape.key, key, f"{where}.key")
            problems += constraint_problems(shape.value, item, f"{where}.{key}")
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            fail(f"Member must have length less than or equal to {meta['max']}")
        enum = shape.enum
        if enum and value not in enum:
            fail(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            fail(f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        too_big = "max" in meta and value > meta["max"]
        if too_big:
            fail(f"Member must have value less than or equal to {meta['max']}")
    return problems


def validate_request(op: Any, params: dict[str, Any], code: str = VALIDATION_EXCEPTION) -> None:
    """Check ``params`` (already :func:`decode_wire`-d) against the operation's input shape.

    Raises an :class:`ApiError` with the service's validation ``code`` and botocore's report text
    (``Parameter validation failed: ...``) or the service's constraint text.
    """
    from botocore.validate import ParamValidator

    shape = op.input_shape
    if shape is None:
        if params:
            raise ApiError(
                code,
                f"Parameter validation failed:\nUnknown parameter in input: {sorted(params)[0]!r}, "
                f"{op.name} takes no parameters",
            )
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ApiError(code, f"Parameter validation failed:\n{report.generate_report()}")
    problems = constraint_problems(shape, params)
    if problems:
        count = len(problems)
        raise ApiError(
            code, f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems[:10])
        )


def missing_member(path: str, code: str = VALIDATION_EXCEPTION) -> ApiError:
    """The AWS text for a member the API needs although the model marks it optional."""
    return ApiError(
        code,
        f"1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null",
    )


# -------------------------------------------------------------------------------------------- output


def check_response(op: Any, result: dict[str, Any]) -> list[str]:
    """Problems of a response against the operation's output shape (empty when it is valid)."""
    from botocore.validate import ParamValidator

    shape = op.output_shape
    if shape is None:
        return [] if not result else [f"{op.name} has no output, got {sorted(result)}"]
    report = ParamValidator().validate(result, shape)
    return [report.generate_report()] if report.has_errors() else []


def encode_wire(value: Any) -> Any:
    """Python values into JSON 1.1 values: datetimes to epoch seconds, bytes to base64, ``None`` dropped."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: encode_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [encode_wire(v) for v in value]
    return value


def timestamp(seconds: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (``None`` stays ``None``)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
