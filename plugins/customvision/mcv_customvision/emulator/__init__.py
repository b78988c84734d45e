"""A loopback Azure Custom Vision for tests and offline development: the real SDK clients talk to it.

Public API::

    from mcv_customvision.emulator import CustomVisionEmulator, customvision_emulator, DEFAULT_PACE

    with customvision_emulator(pace=0.02, state_dir=tmp, tier="S0") as emu:
        emu.endpoint                  # http://127.0.0.1:PORT: training (v3.4-preview) and prediction (v3.1)
        emu.training_key, emu.prediction_key, emu.prediction_resource_id
        emu.provider_settings()       # MCV_CUSTOMVISION_* for `mcv --provider customvision`
        with emu.patched_environment(): ...
        emu.inject(operation="CreateImagesFromFiles", status=429, times=2, retry_after=1)
        emu.fail_next_iteration(reason="...")
        emu.calls("TrainProject")     # [{"operation", "method", "path", "query", "status"}, ...]
        emu.project_ids()

Where each behaviour lives: :mod:`.service` (the operations and every rule they enforce), :mod:`.training`
(the iteration's status walk, real training, performance), :mod:`.store` (resources and their JSON),
:mod:`.texts` (codes and messages), :mod:`.rest` (key check, faults, call log), :mod:`.server` (routes),
:mod:`.core` (life cycle) and ``export`` (the export archives). The generic parts (faults, HTTP server thread,
admin routes, training and ONNX serving) are the shared kit :mod:`multicloud_cv.emulation`.

Importing this package is light: starlette, uvicorn, Pillow, torch and onnxruntime load when the emulator
starts or first needs them.
"""

from __future__ import annotations

from mcv_customvision.emulator.core import DEFAULT_PACE, CustomVisionEmulator, customvision_emulator

__all__ = ["DEFAULT_PACE", "CustomVisionEmulator", "customvision_emulator"]
