"""A loopback Rekognition Custom Labels for tests and offline development: the real boto3 client talks to it.

Public API::

    from mcv_rekognition.emulator import rekognition_emulator, RekognitionEmulator

    with rekognition_emulator(pace=0.02, state_dir=tmp, bucket="bkt") as emu:
        emu.endpoint_url            # http://127.0.0.1:PORT: RekognitionService.* (JSON 1.1)
        emu.s3_endpoint_url         # moto: S3 (images, manifests, training output) and every other service
        emu.region
        emu.environment()           # AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_REKOGNITION, dummy keys, region
        emu.provider_settings()     # MCV_REKOGNITION_REGION / _BUCKET / _POLL_S
        emu.create_bucket("other")
        emu.inject(operation="DetectCustomLabels", error="ProvisionedThroughputExceededException", times=2)
        emu.inject(operation="CreateProjectVersion", status=500, after_effect=True)
        emu.fail_next_version(status_message="...")   # the next version ends TRAINING_FAILED with it
        emu.calls("CreateProjectVersion")

What it emulates and where each behaviour comes from: :mod:`.control` (the operations and their rules),
:mod:`.manifest` (the developer guide's manifest validation, error codes and validation outputs),
:mod:`.datasets` (CreateDataset, DistributeDatasetEntries), :mod:`.training` (the version's state walk,
validation results, real training with the local provider's engine), :mod:`.evaluation` (the training
results summary file), :mod:`.hosting` (start, stop, delete, DetectCustomLabels), :mod:`.texts` (the
service's codes and messages), :mod:`.store` (resources, ARNs), :mod:`.server` and :mod:`.core`; the generic
parts (JSON 1.1 protocol from botocore's model, faults, HTTP server, moto and S3, training and ONNX
serving) are the shared kit :mod:`multicloud_cv.emulation`.

moto's state is process-wide (``moto.backends``): buckets and objects outlive an emulator in the same
process, and two emulators in one process share them. Give buckets unique names per test module.

Importing this package is light: starlette, uvicorn, moto, boto3, torch and onnxruntime load when the
emulator starts or first needs them.
"""

from __future__ import annotations

from mcv_rekognition.emulator.core import DEFAULT_PACE, RekognitionEmulator, rekognition_emulator

__all__ = ["DEFAULT_PACE", "RekognitionEmulator", "rekognition_emulator"]
