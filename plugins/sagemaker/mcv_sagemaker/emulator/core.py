"""The SageMaker emulator as one object: moto (S3, IAM, STS, CloudWatch Logs ...) plus the SageMaker server.

:class:`SageMakerEmulator` is a :class:`multicloud_cv.emulation.aws.AwsEmulator` (life cycle, environment,
clients, buckets, faults); it starts, on 127.0.0.1 only:

* moto's ``ThreadedMotoServer`` (every AWS service but SageMaker: S3 for the data and models, IAM for the
  execution role, CloudWatch Logs for job logs, service-quotas ...), with an execution role that SageMaker
  may assume (``role_arn``) and, when asked, a bucket;
* the emulated SageMaker control plane and runtime (:mod:`.server`, :mod:`.control`) on one port.

boto3 reaches both through the environment of :meth:`SageMakerEmulator.environment`: ``AWS_ENDPOINT_URL``
(moto) and the service-specific ``AWS_ENDPOINT_URL_SAGEMAKER`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` /
``AWS_ENDPOINT_URL_SERVICE_QUOTAS`` (the emulator; moto has no SageMaker quotas, see :mod:`.quotas`), plus
dummy credentials (``testing``; not secrets) and the region.

:meth:`SageMakerEmulator.stop` sets the closing flag (runner threads stop at their next check, training
included), shuts uvicorn and moto down and waits a few seconds for the threads; it never hangs on them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcv_sagemaker.emulator.faults import FaultBook
from multicloud_cv.emulation.aws import DEFAULT_REGION, LOOPBACK, S3, AwsEmulator
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

DEFAULT_PACE = 0.05
"""Seconds per state by default: fast enough for tests; ``mcv emulate`` may slow it down."""
ROLE_NAME = "mcv-sagemaker-emulator"
OWN_SERVICES = ("sagemaker", "sagemaker-runtime", "service-quotas")
"""boto3 service names the emulator answers itself; moto answers every other."""

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "logs:*", "cloudwatch:*", "ecr:*"], "Resource": "*"},
    ],
}


class SageMakerEmulator(AwsEmulator):
    """A loopback SageMaker (control plane and runtime) with moto for every other AWS service.

    Use as a context manager (or :meth:`start` / :meth:`stop`)::

        with SageMakerEmulator(pace=0.02) as emu:
            emu.create_bucket("bkt")
            sm = boto3.client("sagemaker", endpoint_url=emu.endpoint_url, ...)   # or emu.client("sagemaker")

    Options: ``host`` (loopback only), ``port`` (0 picks a free one), ``pace`` (seconds per state),
    ``state_dir`` (work files; a temporary folder, removed at stop, when not given), ``bucket`` (created at
    start), ``region``, and the training caps ``max_epochs`` (3), ``max_steps`` (8, detection),
    ``max_image_size`` (64 px) and ``threads`` (1 CPU thread per training and per loaded model).
    """

    name = "sagemaker"
    title = "SageMaker"
    own_services = OWN_SERVICES
    own_variables = (
        "AWS_ENDPOINT_URL_SAGEMAKER",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_ENDPOINT_URL_SERVICE_QUOTAS",
    )
    faults: FaultBook

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = DEFAULT_PACE,
        state_dir: str | Path | None = None,
        bucket: str | None = None,
        region: str = DEFAULT_REGION,
        max_epochs: int = 3,
        max_steps: int = 8,
        max_image_size: int = 64,
        threads: int = 1,
    ) -> None:
        super().__init__(host=host, port=port, pace=pace, state_dir=state_dir, bucket=bucket, region=region)
        self.limits = Limits(max_epochs=max_epochs, max_steps=max_steps, max_image_size=max_image_size, threads=threads)
        self.limits.check()

    # ------------------------------------------------------------------------------------------ hooks

    def _make_faults(self) -> FaultBook:
        return FaultBook()

    def _setup_moto(self, s3: S3) -> None:
        self._create_role(s3)

    def _build_service(self, s3: S3, state_dir: Path) -> Any:
        from mcv_sagemaker.emulator.control import ControlPlane

        return ControlPlane(self.region, s3, state_dir, self.pace, self.limits, self.faults, self.closing)

    def _build_app(self, service: Any) -> Any:
        from mcv_sagemaker.emulator.server import build_app

        return build_app(service, self)

    # -------------------------------------------------------------------------------------- addresses

    @property
    def role_arn(self) -> str:
        """An execution role in moto's IAM that SageMaker may assume, allowed to use S3 and CloudWatch Logs."""
        return f"arn:aws:iam::{self.account}:role/{ROLE_NAME}"

    def provider_settings(self) -> dict[str, str]:
        """``MCV_SAGEMAKER_*`` settings that make ``mcv --provider sagemaker`` work against this emulator as is:
        its region, its role, the bucket made at start (if any) and a poll interval matched to the pace."""
        values = {
            "MCV_SAGEMAKER_REGION": self.region,
            "MCV_SAGEMAKER_ROLE_ARN": self.role_arn,
            "MCV_SAGEMAKER_POLL_S": f"{max(0.05, self.pace / 2):g}",
        }
        if self.bucket:
            values["MCV_SAGEMAKER_BUCKET"] = self.bucket
        return values

    def client(self, service: str | None = "sagemaker", **kwargs: Any) -> Any:
        """A boto3 client bound to the emulator (:data:`OWN_SERVICES`) or to moto (every other service)."""
        return super().client(service, **kwargs)

    # ----------------------------------------------------------------------------------------- set-up

    def _create_role(self, s3: S3) -> None:
        from botocore.exceptions import ClientError

        iam = s3.client("iam")
        try:
            iam.create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="execution role of the multicloud-cv SageMaker emulator",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
                raise
        iam.put_role_policy(
            RoleName=ROLE_NAME, PolicyName="mcv-emulator-access", PolicyDocument=json.dumps(ROLE_POLICY)
        )

    # ----------------------------------------------------------------------------------------- faults

    def fail_next_training_job(self, reason: str) -> None:
        """The next training job created walks to ``Failed`` with ``reason`` as its FailureReason."""
        self.faults.fail_next_training_job(reason)

    def set_quota(self, instance_type: str, usage: str = "training job", limit: int | None = 0) -> None:
        """Set the quota of ``instance_type`` for ``usage`` (``training job``, ``endpoint``, ``transform job``) to
        ``limit`` instances (``None``: back to the default of 20). Requests beyond it get ``ResourceLimitExceeded``
        with the service's text (pains.md S6); the Service Quotas API reports it (:mod:`.quotas`)."""
        self._need()
        self.control.quotas.set(instance_type, usage, limit)

    # ---------------------------------------------------------------------------------------- inspect

    def logs(self, kind: str, name: str) -> list[str]:
        """Log lines of a ``training-job``, ``endpoint`` or ``transform-job`` (also in moto's CloudWatch Logs)."""
        self._need()
        return list(self.control.logs.get(f"{kind}/{name}", []))


@contextlib.contextmanager
def sagemaker_emulator(
    pace: float = DEFAULT_PACE,
    state_dir: str | Path | None = None,
    bucket: str | None = None,
    **options: Any,
) -> Iterator[SageMakerEmulator]:
    """Run a :class:`SageMakerEmulator` for the block; it is stopped when the block ends, even on error."""
    emulator = SageMakerEmulator(pace=pace, state_dir=state_dir, bucket=bucket, **options)
    with emulator:
        yield emulator
