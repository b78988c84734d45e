"""The REST layer of the Vertex AI emulator: routes, request parsing, faults, call log, error answers.

:class:`RestService` serves one HTTP call:

1. the route: ``(method, regular expression over the path, RPC name, handler)`` from
   :meth:`RestService.routes`, matched in order. Paths are those of the SDK's
   ``aiplatform_v1/services/*/transports/rest_base.py`` (``/v1/projects/{p}/locations/{l}/customJobs`` ...;
   operations under ``/ui/`` and ``/v1/``). No route: 404 NOT_FOUND. A known path with another method: 404 too,
   as Google's front end answers.
2. the project in the path must be the emulator's (403 PERMISSION_DENIED otherwise);
3. a pending fault of the RPC (:class:`multicloud_cv.emulation.faults.FaultBook`, operation = the RPC name):
   ``delay`` waits, an error answers instead of the handler (worded by :data:`.texts.CATALOGUE`), an
   after-effect error answers once the handler has run;
4. the handler returns a JSON-able payload (HTTP 200) or raises
   :class:`~multicloud_cv.emulation.protocol.ApiError` (``code`` = canonical status name); any other exception
   is an emulator bug: logged, answered 500 INTERNAL.

Bodies are parsed with the SDK's own proto-plus types (:meth:`Call.message`): an unknown or mistyped field is 400
INVALID_ARGUMENT (``Invalid JSON payload received. ...``). Enums arrive as integers (the REST transport sends
``$alt=json;enum-encoding=int``) or names; answers write enum names. Every call is logged as
``{"operation", "method", "path", "status"}``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcv_vertex.emulator.texts import CATALOGUE, body, error, invalid
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.protocol import ApiError

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, str], bytes]
JSON = "application/json; charset=UTF-8"
LOCATION = r"/v1/projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)"


@dataclass
class Call:
    """One request as a handler sees it: path groups, query, raw body."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    @property
    def parent(self) -> str:
        """``projects/{p}/locations/{l}`` of the path."""
        return f"projects/{self.params['project']}/locations/{self.params['location']}"

    def name(self, collection: str) -> str:
        """The full resource name ``projects/../locations/../{collection}/{id}`` of the path."""
        return f"{self.parent}/{collection}/{self.params['id']}"

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (empty body: ``{}``); 400 otherwise."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise invalid(f"Invalid JSON payload received. {exc}") from None
        if not isinstance(value, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        return value

    def message(self, cls: Any, payload: dict[str, Any] | None = None) -> Any:
        """The body (or ``payload``) parsed as the proto-plus message ``cls``, unknown fields refused."""
        from google.protobuf import json_format

        data = self.json() if payload is None else payload
        try:
            return cls.from_json(json.dumps(data), ignore_unknown_fields=False)
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise invalid(f"Invalid JSON payload received. {exc}") from None


Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """An RPC: HTTP method, compiled path pattern, RPC name (faults and calls), handler."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


def route(method: str, path: str, name: str, handler: Handler) -> Route:
    """A :class:`Route`; ``path`` is a regular expression (``{LOCATION}`` = the location prefix)."""
    return Route(method.upper(), re.compile("^" + path.replace("{LOCATION}", LOCATION) + "$"), name, handler)


class RestService:
    """Base of the emulated service (see the module docstring); subclasses give :meth:`routes`. Thread-safe."""

    def __init__(self, faults: FaultBook, project: str) -> None:
        self.faults = faults
        self.project = project
        self._calls: list[dict[str, Any]] = []
        self._calls_lock = threading.Lock()
        self._routes: list[Route] = []

    def routes(self) -> list[Route]:
        """The RPCs served."""
        return []

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Calls received so far, in order (only ``operation``'s when given)."""
        with self._calls_lock:
            return [dict(c) for c in self._calls if operation is None or c["operation"] == operation]

    @staticmethod
    def answer(status: int, payload: Any) -> Answer:
        return status, {"Content-Type": JSON}, json.dumps(payload).encode()

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        if not self._routes:
            self._routes = self.routes()
        for candidate in self._routes:
            found = candidate.pattern.match(path)
            if found and candidate.method == method:
                return candidate, found.groupdict()
        return None, {}

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> Answer:
        """Serve one call (see the module docstring)."""
        method = method.upper()
        target, params = self._match(method, path)
        name = target.name if target else "Unknown"
        answer = self._serve(target, Call(method, path, params, query, raw))
        with self._calls_lock:
            self._calls.append({"operation": name, "method": method, "path": path, "status": answer[0]})
        return answer

    def _serve(self, target: Route | None, call: Call) -> Answer:
        if target is None:
            err = error("NOT_FOUND", f"The requested URL {call.path} was not found on this server.")
            return self.answer(err.status, body(err))
        try:
            project = call.params.get("project")
            if project is not None and project != self.project:
                raise error(
                    "PERMISSION_DENIED",
                    f"Permission 'aiplatform.{target.name}' denied on resource '//aiplatform.googleapis.com/"
                    f"projects/{project}' (or it may not exist).",
                )
            fault = self.faults.take(target.name, after_effect=False)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.raises:
                    raise CATALOGUE.error(fault, target.name, {})
            payload = target.handler(call)
            fault = self.faults.take(target.name, after_effect=True)
            if fault is not None:
                raise CATALOGUE.error(fault, target.name, {})
        except ApiError as err:
            log.debug("%s -> %s", target.name, err)
            return self.answer(err.status, body(err))
        except Exception as exc:  # an emulator bug: answer as the service's internal error would
            log.exception("%s failed inside the emulator", target.name)
            internal = error("INTERNAL", f"The emulator failed: {exc!r}")
            return self.answer(internal.status, body(internal))
        return self.answer(200, payload)
