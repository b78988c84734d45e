"""A loopback Vertex AI (v1 REST) for tests and offline development: the real GAPIC clients talk to it.

Public API::

    from mcv_vertex.emulator import VertexEmulator, vertex_emulator, DEFAULT_PACE

    with vertex_emulator(pace=0.02, state_dir=tmp, bucket="bkt", project="mcv-emulated",
                         location="us-central1") as emu:
        emu.endpoint, emu.gcs_endpoint           # Vertex v1 REST; gcp-storage-emulator (in process, in memory)
        emu.environment()                        # {"STORAGE_EMULATOR_HOST": ...}
        emu.provider_settings()                  # MCV_VERTEX_PROJECT, _LOCATION, _BUCKET, _API_ENDPOINT, _POLL_S
        with emu.patched_environment(): ...
        emu.create_bucket("other", location="US")
        emu.inject(operation="CreateCustomJob", status=429, times=2)
        emu.fail_next_job(message="Resources are insufficient in region: us-central1", code=8)
        emu.calls("Predict"); emu.resources("endpoints"); emu.reset_faults()

Clients: ``aiplatform_v1.JobServiceClient(transport="rest", client_options={"api_endpoint": emu.endpoint},
credentials=AnonymousCredentials())`` and the other services the same way; google-cloud-storage through
``STORAGE_EMULATOR_HOST``. Where each behaviour lives: :mod:`.service` (RPCs, operations, state walks, rules),
:mod:`.work` (predictions in AutoML's format, AutoML training, the custom job's environment), :mod:`.gcs`
(Cloud Storage access, bucket locations), :mod:`.rest` (routing, parsing, faults, call log), :mod:`.texts`
(error codes and texts), :mod:`.server` (HTTP app), :mod:`.core` (life cycle). The generic parts are the shared
kit :mod:`multicloud_cv.emulation`.

Importing this package is light: the SDK, starlette, uvicorn, torch and onnxruntime load when the emulator starts
or first needs them.
"""

from __future__ import annotations

from mcv_vertex.emulator.core import DEFAULT_PACE, VertexEmulator, vertex_emulator

__all__ = ["DEFAULT_PACE", "VertexEmulator", "vertex_emulator"]
