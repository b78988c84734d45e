"""A loopback SageMaker for tests and offline development: the real boto3 client talks to it.

Public API::

    from mcv_sagemaker.emulator import sagemaker_emulator, SageMakerEmulator

    with sagemaker_emulator(pace=0.02, state_dir=tmp) as emu:
        emu.endpoint_url            # http://127.0.0.1:PORT: SageMaker control plane AND runtime
        emu.s3_endpoint_url         # moto: S3, IAM, STS, CloudWatch Logs ... (every other AWS service)
        emu.region, emu.role_arn    # "us-east-1", a role SageMaker may assume
        emu.environment()           # AWS_ENDPOINT_URL(_SAGEMAKER, _SAGEMAKER_RUNTIME, _SERVICE_QUOTAS), keys, region
        emu.create_bucket("bkt")
        emu.inject(operation="CreateTrainingJob", error="ThrottlingException", times=2)
        emu.inject(operation="CreateTrainingJob", status=500, after_effect=True)
        emu.fail_next_training_job("ClientError: ...")
        emu.calls("CreateTrainingJob")
        emu.set_quota("ml.p3.2xlarge", "training job", 0)   # ResourceLimitExceeded, and Service Quotas shows 0
        emu.logs("training-job", name)                      # also in moto's CloudWatch Logs

What it emulates and where each behaviour comes from: :mod:`.protocol` (wire protocol and validation from
botocore's models), :mod:`.control` (operations and the service's texts), :mod:`.rules` (the built-in
algorithms' API and container checks), :mod:`.training` (the state walk and real training with the local
provider's engine), :mod:`.hosting` and :mod:`.serving` (endpoints, InvokeEndpoint, batch transform),
:mod:`.faults` (injected faults), :mod:`.quotas` (instance quotas and the Service Quotas API), :mod:`.server`
(HTTP), :mod:`.core` (start, stop, environment), :mod:`.store` (resources) and :mod:`.logs`; the generic parts (wire
protocol, fault book, HTTP server, moto and S3, real training and ONNX serving) are the shared kit
:mod:`multicloud_cv.emulation`.

moto's state is process-wide (``moto.backends``): buckets, objects and roles outlive an emulator in the same
process, and two emulators in one process share them. Give buckets unique names per test module.

Importing this package is light: starlette, uvicorn, moto, boto3, torch and onnxruntime load when the
emulator starts or first needs them.
"""

from __future__ import annotations

from mcv_sagemaker.emulator.core import DEFAULT_PACE, SageMakerEmulator, sagemaker_emulator

__all__ = ["DEFAULT_PACE", "SageMakerEmulator", "sagemaker_emulator"]
