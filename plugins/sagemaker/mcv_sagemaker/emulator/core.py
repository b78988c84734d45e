"""The SageMaker emulator as one object: moto (S3, IAM, STS, CloudWatch Logs ...) plus the SageMaker server.

:class:`SageMakerEmulator` starts, on 127.0.0.1 only:

* moto's ``ThreadedMotoServer`` through :func:`multicloud_cv.testing.emulators.moto_server` (every AWS
  service but SageMaker: S3 for the data and models, IAM for the execution role, CloudWatch Logs for job
  logs, service-quotas ...), with an execution role that SageMaker may assume (``role_arn``) and, when
  asked, a bucket;
* the emulated SageMaker control plane and runtime (:mod:`.server`, :mod:`.control`) on one port.

boto3 reaches both through the environment of :meth:`SageMakerEmulator.environment`: ``AWS_ENDPOINT_URL``
(moto) and the service-specific ``AWS_ENDPOINT_URL_SAGEMAKER`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` /
``AWS_ENDPOINT_URL_SERVICE_QUOTAS`` (the emulator; moto has no SageMaker quotas, see :mod:`.quotas`), which
botocore's ``EndpointURLConfigProvider`` reads (``AWS_ENDPOINT_URL_<SERVICE ID>``, checked with botocore 1.43),
plus dummy credentials (``testing``; not secrets) and the region.

:meth:`SageMakerEmulator.stop` sets the closing flag (runner threads stop at their next check, training
included), shuts uvicorn and moto down and waits a few seconds for the threads; it never hangs on them
(they are daemon threads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcv_sagemaker.emulator.faults import Fault, FaultBook
from mcv_sagemaker.emulator.training import Limits

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
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


class _MotoGapFilter(logging.Filter):
    """Drops werkzeug's traceback for an AWS action moto does not implement (answered 500 NotImplemented).

    The preflight checks probe such actions on purpose (iam:SimulatePrincipalPolicy) and skip them with a note;
    the traceback on the emulator's console would only look like a failure. Every other error still logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, NotImplementedError):
            return False
        text = record.getMessage()  # werkzeug formats the traceback into the message
        return not ("NotImplementedError: The " in text and "has not been implemented" in text)


def _quiet_moto_gaps() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _MotoGapFilter) for f in logger.filters):
        logger.addFilter(_MotoGapFilter())


class SageMakerEmulator:
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
        if host not in (LOOPBACK, "localhost"):
            raise ValueError(f"the emulator listens on 127.0.0.1 only, not {host!r}")
        if pace < 0:
            raise ValueError(f"pace must not be negative, got {pace}")
        if min(max_epochs, max_steps, threads) < 1 or max_image_size < 16:
            raise ValueError("max_epochs, max_steps and threads must be >= 1 and max_image_size >= 16")
        self.host = LOOPBACK
        self.port = int(port)
        self.pace = float(pace)
        self.region = region
        self.bucket = bucket
        self.limits = Limits(max_epochs=max_epochs, max_steps=max_steps, max_image_size=max_image_size, threads=threads)
        self._state_dir_given = state_dir is not None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.faults = FaultBook()
        self.closing = threading.Event()
        self._stack: contextlib.ExitStack | None = None
        self._moto: Any = None
        self._server: Any = None
        self.control: Any = None
        self._session: Any = None
        self._session_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ life

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def start(self) -> SageMakerEmulator:
        """Start moto and the SageMaker server; return ``self``."""
        if self.started:
            return self
        from mcv_sagemaker.emulator.control import ControlPlane
        from mcv_sagemaker.emulator.s3io import S3
        from mcv_sagemaker.emulator.server import ServerThread, build_app
        from multicloud_cv.testing.emulators import moto_server

        self.closing.clear()
        _quiet_moto_gaps()
        stack = contextlib.ExitStack()
        try:
            if self.state_dir is None:
                self.state_dir = Path(tempfile.mkdtemp(prefix="mcv-sagemaker-emulator-"))
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._moto = stack.enter_context(moto_server(region=self.region))
            s3 = S3(self._moto.endpoint_url, self.region)
            self._create_role(s3)
            if self.bucket:
                self.create_bucket(self.bucket)
            self.control = ControlPlane(
                self.region, s3, self.state_dir, self.pace, self.limits, self.faults, self.closing
            )
            server = ServerThread(build_app(self.control, self), self.host, self.port)
            server.start()
            self._server = server
            self.port = int(server.port)
            stack.callback(self._shutdown_server)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        log.info(
            "SageMaker emulator on %s (moto on %s), state in %s",
            self.endpoint_url,
            self.s3_endpoint_url,
            self.state_dir,
        )
        return self

    def _shutdown_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def stop(self) -> None:
        """Stop training and endpoints, then the servers; remove a temporary state folder."""
        if self._stack is None:
            return
        self.closing.set()
        try:
            if self.control is not None:
                left = self.control.join(timeout=10.0)
                if left:
                    log.warning("emulator threads still running at stop: %s", ", ".join(left))
        finally:
            stack, self._stack = self._stack, None
            stack.close()
            self._moto = None
            if not self._state_dir_given and self.state_dir is not None:
                shutil.rmtree(self.state_dir, ignore_errors=True)
                self.state_dir = None
        log.info("SageMaker emulator stopped")

    def __enter__(self) -> SageMakerEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (when not started) and serve until interrupted (Ctrl-C or SIGTERM); then stop."""
        import signal

        self.start()
        done = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()

    # -------------------------------------------------------------------------------------- addresses

    def _need(self) -> None:
        if not self.started:
            raise RuntimeError("the SageMaker emulator is not started; use `with sagemaker_emulator() as emu:`")

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: the SageMaker control plane and runtime."""
        self._need()
        return f"http://{self.host}:{self.port}"

    @property
    def s3_endpoint_url(self) -> str:
        """moto's ``http://127.0.0.1:PORT``: S3, IAM, STS, CloudWatch Logs, service-quotas ..."""
        self._need_moto()
        return str(self._moto.endpoint_url)

    @property
    def account(self) -> str:
        """The emulated account id (moto's default)."""
        from mcv_sagemaker.emulator.store import ACCOUNT

        return ACCOUNT

    @property
    def role_arn(self) -> str:
        """An execution role in moto's IAM that SageMaker may assume, allowed to use S3 and CloudWatch Logs."""
        return f"arn:aws:iam::{self.account}:role/{ROLE_NAME}"

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 at the emulator: give them to a subprocess or use :meth:`patched_environment`.

        ``AWS_CONFIG_FILE`` and ``AWS_SHARED_CREDENTIALS_FILE`` point at the null device so that a user's
        profiles cannot redirect the clients.
        """
        return {
            "AWS_ENDPOINT_URL": self.s3_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.endpoint_url,
            "AWS_ENDPOINT_URL_SERVICE_QUOTAS": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

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

    @contextlib.contextmanager
    def patched_environment(self) -> Iterator[None]:
        """Apply :meth:`environment` to ``os.environ`` for the block (and unset competing AWS variables)."""
        from multicloud_cv.testing.emulators import patched_environ

        values: dict[str, str | None] = {
            **self.environment(),
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None,
            "AWS_PROFILE": None,
        }
        with patched_environ(values):
            yield

    def client(self, service: str = "sagemaker", **kwargs: Any) -> Any:
        """A boto3 client bound to the emulator (:data:`OWN_SERVICES`) or to moto (every other service)."""
        import boto3

        url = self.endpoint_url if service in OWN_SERVICES else self.s3_endpoint_url
        with self._session_lock:  # one session (its parsed service models are reused); creation is not thread-safe
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client(
                service,
                endpoint_url=url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                **kwargs,
            )

    # ----------------------------------------------------------------------------------------- set-up

    def create_bucket(self, name: str) -> None:
        """Create an S3 bucket in the emulator's region (an existing one of ours is kept)."""
        from botocore.exceptions import ClientError

        self._need_moto()
        s3 = self.client("s3")
        extra = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            s3.create_bucket(Bucket=name, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def _need_moto(self) -> None:
        if self._moto is None:
            raise RuntimeError("the SageMaker emulator is not started")

    def _create_role(self, s3: Any) -> None:
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

    def inject(
        self,
        operation: str | None = None,
        error: str | None = None,
        status: int | None = None,
        times: int = 1,
        after_effect: bool = False,
        message: str | None = None,
        delay: float = 0.0,
        slow: float | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` calls of ``operation`` (``None``: any); see :mod:`.faults`.

        ``error`` (e.g. ``ThrottlingException``, ``ResourceLimitExceeded``, ``InternalFailure``,
        ``ServiceUnavailable``) and/or ``status`` answer an error instead of serving the call (or after
        serving it, with ``after_effect=True``); ``delay`` holds the answer that many seconds; ``slow``
        multiplies the pace of the resources the next ``times`` calls create.
        """
        self.faults.add(
            Fault(
                operation=operation,
                error=error,
                status=status,
                message=message,
                times=int(times),
                after_effect=bool(after_effect),
                delay=float(delay),
                slow=None if slow is None else float(slow),
            )
        )

    def fail_next_training_job(self, reason: str) -> None:
        """The next training job created walks to ``Failed`` with ``reason`` as its FailureReason."""
        self.faults.fail_next_training_job(reason)

    def reset_faults(self) -> None:
        """Forget pending faults and queued job failures."""
        self.faults.clear()

    def set_quota(self, instance_type: str, usage: str = "training job", limit: int | None = 0) -> None:
        """Set the quota of ``instance_type`` for ``usage`` (``training job``, ``endpoint``, ``transform job``) to
        ``limit`` instances (``None``: back to the default of 20). Requests beyond it get ``ResourceLimitExceeded``
        with the service's text (pains.md S6); the Service Quotas API reports it (:mod:`.quotas`)."""
        self._need()
        self.control.quotas.set(instance_type, usage, limit)

    # ---------------------------------------------------------------------------------------- inspect

    def calls(self, operation: str | None = None) -> list[str]:
        """Operations received, in order (``InvokeEndpoint`` included); only ``operation``'s when given."""
        self._need()
        result: list[str] = self.control.calls(operation)
        return result

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
