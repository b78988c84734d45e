"""The HTTP side of the Rekognition emulator: one Starlette app on one port (uvicorn in a thread, 127.0.0.1).

Routes:

* ``POST /`` - the API, AWS JSON 1.1 (``X-Amz-Target: RekognitionService.<Operation>``), answered by
  :class:`.control.RekognitionService` in Starlette's thread pool;
* ``/_emulator/...`` - administration for a separately started emulator (``mcv emulate rekognition``):
  ``POST /_emulator/faults`` (JSON: the fields of :class:`multicloud_cv.emulation.faults.Fault`),
  ``DELETE /_emulator/faults``, ``POST /_emulator/fail-next-version`` (``{"status_message": ...}``),
  ``GET /_emulator/calls[?operation=X]``, ``GET /_emulator/health``.

Everything here is the shared :mod:`multicloud_cv.emulation.server`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multicloud_cv.emulation.server import admin_routes, control_route

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mcv_rekognition.emulator.control import RekognitionService


def build_app(service: RekognitionService, admin: Any) -> Starlette:
    """The Starlette app serving ``service`` (and ``admin``: the :class:`RekognitionEmulator` for admin routes)."""
    from starlette.applications import Starlette

    routes = [
        control_route(service),
        *admin_routes(admin, service, ("fail-next-version", "status_message", admin.fail_next_version)),
    ]
    return Starlette(routes=routes)
