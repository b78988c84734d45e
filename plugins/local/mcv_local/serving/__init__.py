"""Serving side of the local provider: an onnxruntime model behind a loopback HTTP server.

* :mod:`mcv_local.serving.session` - :class:`~mcv_local.serving.session.OnnxModel`, the
  exported model loaded in-process (decode, score, format results).
* :mod:`mcv_local.serving.server` - the Starlette/uvicorn endpoint with dynamic
  micro-batching (``python -m mcv_local.serving.server --model-dir DIR --port P``).
* :mod:`mcv_local.serving.client` - :class:`~mcv_local.serving.client.EndpointClient`.
* :mod:`mcv_local.serving.errors` - the :class:`~mcv_local.serving.errors.ServingError` family.

Importing this package imports neither onnxruntime nor the HTTP stack.
"""

from mcv_local.serving.errors import EndpointUnreachable, InvalidImage, ModelLoadError, PortInUse, ServingError

__all__ = ["EndpointUnreachable", "InvalidImage", "ModelLoadError", "PortInUse", "ServingError"]
