"""An emulated AWS service beside moto: life cycle, environment, clients, buckets, faults, S3 access.

:class:`AwsEmulator` is the base of the AWS emulators (``SageMakerEmulator``, ``RekognitionEmulator``). It
starts, on 127.0.0.1 only:

* moto's ``ThreadedMotoServer`` through :func:`multicloud_cv.testing.emulators.moto_server` (every AWS
  service the emulator does not answer itself: S3 for the data, IAM, STS, CloudWatch Logs ...) and, when
  asked, a bucket;
* the emulated service (a :class:`~multicloud_cv.emulation.service.JsonService` behind a Starlette app) on
  one port, in a :class:`~multicloud_cv.emulation.server.ServerThread`.

boto3 reaches both through :meth:`AwsEmulator.environment`: ``AWS_ENDPOINT_URL`` (moto) and the
service-specific ``AWS_ENDPOINT_URL_<SERVICE ID>`` variables of :attr:`AwsEmulator.own_variables` (the
emulator), which botocore's ``EndpointURLConfigProvider`` reads (checked with botocore 1.43), plus dummy
credentials (``testing``; not secrets), the region, and ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE``
on the null device so that a user's profiles cannot redirect the clients.

:meth:`AwsEmulator.stop` sets the closing flag (runner threads stop at their next check, training
included), shuts uvicorn and moto down and waits a few seconds for the threads; it never hangs on them
(they are daemon threads). moto's state is process-wide (``moto.backends``): buckets and objects outlive
an emulator in the same process, and two emulators in one process share them.

:class:`S3` is the emulated service's own view of S3 (moto's): a thread-safe facade over boto3 clients
bound to the moto endpoint with the dummy credentials, like the real service acting with its role.
:func:`split_uri` accepts ``s3://bucket/key`` and ``https://s3.amazonaws.com/bucket/key``.

Testing-grade code (see :mod:`multicloud_cv.emulation`): boto3, moto and uvicorn load at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.lifecycle import LOOPBACK, Lifecycle

if TYPE_CHECKING:
    from multicloud_cv.emulation.service import JsonService

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
ACCOUNT = "123456789012"
"""moto's default account: the emulators' ARNs and moto's IAM resources share it."""


# ------------------------------------------------------------------------------------------------- S3


def split_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an S3 URI; ``ValueError`` for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3" and parsed.netloc:
        return parsed.netloc, parsed.path.lstrip("/")
    if parsed.scheme == "https" and parsed.netloc.startswith("s3") and parsed.netloc.endswith("amazonaws.com"):
        bucket, _, key = parsed.path.lstrip("/").partition("/")
        if bucket:
            return bucket, key
    raise ValueError(f"{uri!r} is not an S3 URI (s3://bucket/key)")


class S3:
    """A small, thread-safe facade over boto3 clients bound to the moto server."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._local = threading.local()

    def client(self, service: str = "s3") -> Any:
        """A boto3 client of ``service`` on the moto server (one per thread and service)."""
        clients: dict[str, Any] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if service not in clients:
            import boto3
            from botocore.config import Config

            clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return clients[service]

    def bucket_exists(self, bucket: str) -> bool:
        """True when the bucket exists on the server."""
        from botocore.exceptions import ClientError

        try:
            self.client().head_bucket(Bucket=bucket)
        except ClientError:
            return False
        return True

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix`` (folder markers ending in ``/`` left out)."""
        from botocore.exceptions import ClientError

        found: list[tuple[str, int]] = []
        try:
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        found.append((item["Key"], int(item["Size"])))
        except ClientError as exc:
            log.debug("listing s3://%s/%s failed: %s", bucket, prefix, exc)
            return []
        return found

    def exists(self, bucket: str, key: str) -> bool:
        """True when the object exists."""
        from botocore.exceptions import ClientError

        try:
            self.client().head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True

    def size(self, bucket: str, key: str) -> int | None:
        """The object's size in bytes (``None`` when it is missing or unreadable)."""
        from botocore.exceptions import ClientError

        try:
            return int(self.client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError:
            return None

    def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes (botocore ``ClientError`` when it is missing)."""
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def download(self, bucket: str, key: str, path: Path) -> None:
        """Write the object to ``path`` (folders created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client().download_file(bucket, key, str(path))

    def put(self, bucket: str, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write an object."""
        extra = {"ContentType": content_type} if content_type else {}
        self.client().put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def upload(self, path: Path, bucket: str, key: str) -> None:
        """Upload a local file."""
        self.client().upload_file(str(path), bucket, key)


# ----------------------------------------------------------------------------------------------- moto


class MotoGapFilter(logging.Filter):
    """Drops werkzeug's traceback for an AWS action moto does not implement (answered 500 NotImplemented).

    Preflight checks probe such actions on purpose (iam:SimulatePrincipalPolicy) and skip them with a note;
    the traceback on the emulator's console would only look like a failure. Every other error still logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, NotImplementedError):
            return False
        text = record.getMessage()  # werkzeug formats the traceback into the message
        return not ("NotImplementedError: The " in text and "has not been implemented" in text)


def quiet_moto_gaps() -> None:
    """Install :class:`MotoGapFilter` on werkzeug's logger (once)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, MotoGapFilter) for f in logger.filters):
        logger.addFilter(MotoGapFilter())


# ------------------------------------------------------------------------------------------- emulator


class AwsEmulator(Lifecycle):
    """Base of a loopback AWS service with moto for every other AWS service (see the module docstring).

    Subclasses set :attr:`name`, :attr:`title`, :attr:`own_services` (boto3 names answered by the emulator)
    and :attr:`own_variables` (the ``AWS_ENDPOINT_URL_*`` variables pointing at it), and implement
    :meth:`_build_service` and :meth:`_build_app`; :meth:`_setup_moto` and :meth:`_make_faults` are optional.
    Options: ``host`` (loopback only), ``port`` (0 picks a free one), ``pace`` (seconds per state),
    ``state_dir`` (work files; a temporary folder, removed at stop, when not given), ``bucket`` (created at
    start) and ``region``. Use as a context manager or with :meth:`start` / :meth:`stop`.
    """

    name = "aws"
    title = "AWS"
    own_services: tuple[str, ...] = ()
    own_variables: tuple[str, ...] = ()

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = 0.05,
        state_dir: str | Path | None = None,
        bucket: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(host=host, port=port, pace=pace, state_dir=state_dir, faults=self._make_faults())
        self.region = region
        self.bucket = bucket
        self._moto: Any = None
        self._session: Any = None
        self._session_lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- hooks

    def _make_faults(self) -> FaultBook:
        """The fault book (subclasses give it their service's error catalogue)."""
        return FaultBook()

    def _setup_moto(self, s3: S3) -> None:
        """Prepare moto before the service starts (roles ...); nothing by default."""

    def _build_service(self, s3: S3, state_dir: Path) -> JsonService:
        """The emulated service, reading and writing S3 through ``s3``, working in ``state_dir``."""
        raise NotImplementedError

    def _build_app(self, service: JsonService) -> Any:
        """The ASGI app serving ``service`` (and the administration routes)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ life

    def _start(self, stack: contextlib.ExitStack, state_dir: Path) -> None:
        """moto (and the bucket), then the emulated service and its HTTP server."""
        from multicloud_cv.testing.emulators import moto_server

        quiet_moto_gaps()
        self._moto = stack.enter_context(moto_server(region=self.region))
        stack.callback(setattr, self, "_moto", None)
        s3 = S3(self._moto.endpoint_url, self.region)
        self._setup_moto(s3)
        if self.bucket:
            self.create_bucket(self.bucket)
        self.control = self._build_service(s3, state_dir)
        self._serve(stack, self._build_app(self.control))

    def _where(self) -> str:
        return f"{self.endpoint_url} (moto on {self.s3_endpoint_url})"

    # -------------------------------------------------------------------------------------- addresses

    def _need_moto(self) -> None:
        if self._moto is None:
            raise RuntimeError(f"the {self.title} emulator is not started")

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: the emulated service."""
        self._need()
        return f"http://{self.host}:{self.port}"

    @property
    def s3_endpoint_url(self) -> str:
        """moto's ``http://127.0.0.1:PORT``: S3, IAM, STS, CloudWatch Logs ..."""
        self._need_moto()
        return str(self._moto.endpoint_url)

    @property
    def account(self) -> str:
        """The emulated account id (moto's default)."""
        return ACCOUNT

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 at the emulator: give them to a subprocess or use :meth:`patched_environment`."""
        values = {"AWS_ENDPOINT_URL": self.s3_endpoint_url}
        values.update({name: self.endpoint_url for name in self.own_variables})
        values.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
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

    def client(self, service: str | None = None, **kwargs: Any) -> Any:
        """A boto3 client bound to the emulator (:attr:`own_services`; the first by default) or to moto."""
        import boto3

        service = service or (self.own_services[0] if self.own_services else "s3")
        url = self.endpoint_url if service in self.own_services else self.s3_endpoint_url
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

    # ---------------------------------------------------------------------------------------- inspect

    def calls(self, operation: str | None = None) -> list[str]:
        """Operations received, in order; only ``operation``'s when given."""
        self._need()
        result: list[str] = self.control.calls(operation)
        return result
