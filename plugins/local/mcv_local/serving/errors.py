"""Errors raised by the local serving stack.

Every error is a :class:`ServingError`. When the core package ``multicloud_cv`` is
importable, the serving errors also derive from the matching core errors
(:class:`multicloud_cv.errors.MCVError`, ``InvalidImage``, ``PortInUse``) so that the
CLI maps them to the right exit code; the serving stack itself never needs the core.
"""

from __future__ import annotations

try:  # the core's errors, so that the CLI maps serving errors to the right exit codes
    from multicloud_cv.errors import BadInput as _BadInput
    from multicloud_cv.errors import InvalidImage as _CoreInvalidImage
    from multicloud_cv.errors import MCVError as _Base
    from multicloud_cv.errors import PortInUse as _CorePortInUse
except ImportError:  # pragma: no cover - the serving stack also runs without the core

    class _Base(Exception):  # type: ignore[no-redef]
        exit_code = 1

    class _BadInput(_Base):  # type: ignore[no-redef]
        exit_code = 2

    class _CoreInvalidImage(_BadInput):  # type: ignore[no-redef]
        pass

    class _CorePortInUse(_BadInput):  # type: ignore[no-redef]
        pass


class ServingError(_Base):
    """Base of every error raised by :mod:`mcv_local.serving`."""


class InvalidImage(ServingError, _CoreInvalidImage):
    """The bytes given for prediction are not a decodable image (the message says why)."""


class ModelLoadError(ServingError, _BadInput):
    """The model directory holds no usable ``model.onnx`` (missing, corrupt, wrong contract)."""


class EndpointUnreachable(ServingError):
    """Nothing answers at the endpoint's URL (connection refused, timed out, reset)."""


class PortInUse(ServingError, _CorePortInUse):
    """The port asked for is already bound by another process."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        super().__init__(f"port {port} on {host} is already in use; choose another with --port")


__all__ = ["EndpointUnreachable", "InvalidImage", "ModelLoadError", "PortInUse", "ServingError"]
