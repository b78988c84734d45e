"""HTTP client for a local endpoint (``mcv_local.serving.server``)."""

from __future__ import annotations

from typing import Any

import httpx

from mcv_local.serving.errors import EndpointUnreachable, InvalidImage, ServingError


def _check_options(top_k: Any, threshold: Any) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}")


class EndpointClient:
    """Talks to one endpoint at ``url`` (``http://127.0.0.1:PORT``); safe to share between threads.

    ``predict`` raises :class:`InvalidImage` when the server rejects the image (400/413,
    with the server's message), :class:`EndpointUnreachable` when nothing answers at
    ``url`` (refused, timed out, reset) and :class:`ServingError` for any other failure.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            trust_env=False,  # never route loopback traffic through a proxy from the environment
        )

    # -- public API -----------------------------------------------------------------
    def predict(self, image_bytes: bytes, top_k: int | None = None, threshold: float | None = None) -> dict[str, Any]:
        """Score one encoded image; returns the server's ``Prediction`` dict."""
        if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"image_bytes must be bytes, got {type(image_bytes).__name__}")
        _check_options(top_k, threshold)
        params: dict[str, Any] = {}
        if top_k is not None:
            params["top_k"] = top_k
        if threshold is not None:
            params["threshold"] = repr(float(threshold))
        response = self._request(
            "POST",
            "/v1/predict",
            content=bytes(image_bytes),
            params=params,
            headers={"content-type": "application/octet-stream"},
        )
        return self._json(response)

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok", "model_id": ...}``."""
        return self._json(self._request("GET", "/healthz"))

    def metadata(self) -> dict[str, Any]:
        """``GET /v1/metadata``: labels, task, image_size, channels, model_id, backbone."""
        return self._json(self._request("GET", "/v1/metadata"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise EndpointUnreachable(f"nothing answers at {self.url} ({_reason(exc)})") from None
        except httpx.TimeoutException as exc:
            raise EndpointUnreachable(
                f"{self.url} did not answer {method} {path} within {self.timeout:g} s ({_reason(exc)})"
            ) from None
        except httpx.TransportError as exc:
            raise EndpointUnreachable(
                f"connection to {self.url} failed during {method} {path}: {_reason(exc)}"
            ) from None

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise ServingError(f"{self.url} answered 200 with a body that is not JSON") from None
            if not isinstance(body, dict):
                raise ServingError(f"{self.url} answered 200 with JSON that is not an object")
            return body
        message = _server_message(response)
        if status in (400, 413, 415, 422):
            raise InvalidImage(message)
        raise ServingError(f"{self.url}{response.request.url.path} answered HTTP {status}: {message}")


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    text = response.text.strip()
    return text[:500] if text else f"HTTP {response.status_code}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


__all__ = ["EndpointClient"]
