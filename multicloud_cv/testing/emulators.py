"""Cloud emulators on loopback for tests and benchmarks: moto's server (S3 and every other moto service) and
gcp-storage-emulator (GCS).

Both are real server software speaking the service's wire protocol, started in this process on
``127.0.0.1`` with a free port (port 0, chosen by the OS) and stopped when the ``with`` block ends,
even on error. Nothing here is a pytest fixture, so any test module, benchmark or script can use
them; a test module typically starts one server per module from a ``scope="module"`` fixture::

    with moto_server() as aws:              # aws.endpoint_url == "http://127.0.0.1:PORT"
        aws.create_bucket("bkt")
        with aws.environment():             # AWS_ENDPOINT_URL + dummy keys, restored afterwards
            ...                             # boto3 / s3fs calls (any service) now reach moto
        aws.client("sagemaker")             # or explicit clients bound to the server

    with gcs_emulator() as gcs:             # gcs.endpoint_url == "http://127.0.0.1:PORT"
        gcs.create_bucket("bkt")
        with gcs.environment():             # STORAGE_EMULATOR_HOST, restored afterwards
            ...                             # google-cloud-storage / gcsfs calls now reach it

Facts relied on (reference/cloud-apis.md 3.7 and 5.2, checked against moto 5.2.5 and
gcp-storage-emulator 2026.7.19): ``ThreadedMotoServer(ip_address, port=0)`` serves every moto
backend on one endpoint and reports its bound port through ``get_host_and_port()``; its state is
process-global (``moto.backends``), so :meth:`MotoServer.reset` wipes it. gcp-storage-emulator's
``create_server(host, 0, in_memory=True)`` keeps objects in memory; it exposes no bound port, so
:func:`gcs_emulator` reads it from the emulator's HTTP server object (a private attribute, checked
at start). That emulator serves one request at a time (plain ``http.server.HTTPServer``).

Dummy AWS credentials (``testing``/``testing``) are set by :meth:`MotoServer.environment`
because botocore refuses to sign without credentials; they are not secrets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"


@contextlib.contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, unset) environment variables for the block; restore the old values after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class MotoServer:
    """A running moto server (all AWS services on one endpoint); made by :func:`moto_server`."""

    host: str
    port: int
    region: str = DEFAULT_REGION

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``endpoint_url`` or set as ``AWS_ENDPOINT_URL``."""
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str | None]:
        """Environment that points boto3, aiobotocore and s3fs at this server, with dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_PROFILE": None,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Apply :meth:`env` for the block (boto3 conventions: ``AWS_ENDPOINT_URL``); restore afterwards."""
        with patched_environ(self.env()):
            yield

    def client(self, service: str = "s3", **kwargs: Any) -> Any:
        """A boto3 client for ``service`` bound to this server with the dummy credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    def create_bucket(self, name: str) -> None:
        """Create an S3 bucket on this server."""
        self.client().create_bucket(Bucket=name)

    def reset(self) -> None:
        """Forget every bucket, object and resource on the server (moto's state is process-wide)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@contextlib.contextmanager
def moto_server(region: str = DEFAULT_REGION, quiet: bool = True) -> Iterator[MotoServer]:
    """Start moto's ``ThreadedMotoServer`` on 127.0.0.1 with a free port; stop it when the block ends.

    Needs ``moto[server]``. The environment is not changed: use :meth:`MotoServer.environment`
    or pass :attr:`MotoServer.endpoint_url` explicitly. ``quiet`` raises werkzeug's logger to
    WARNING for the block, so the server does not write one access-log line per request to stderr.
    """
    from moto.server import ThreadedMotoServer

    werkzeug_logger = logging.getLogger("werkzeug")
    saved_level = werkzeug_logger.level
    if quiet:
        werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        logger.info("moto server listening on http://%s:%d", host, port)
        yield MotoServer(host=host, port=port, region=region)
    finally:
        server.stop()
        werkzeug_logger.setLevel(saved_level)
        logger.info("moto server stopped")


@dataclass
class GcsEmulator:
    """A running gcp-storage-emulator; made by :func:`gcs_emulator`."""

    host: str
    port: int
    server: Any
    project: str = "test-project"

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``: the value for ``STORAGE_EMULATOR_HOST`` (it includes the scheme)."""
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str | None]:
        """Environment that points google-cloud-storage and gcsfs at this emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url, "GOOGLE_CLOUD_PROJECT": self.project}

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Apply :meth:`env` for the block; restore afterwards."""
        with patched_environ(self.env()):
            yield

    def create_bucket(self, name: str) -> None:
        """Create a bucket in the emulator (through its own storage layer, no HTTP round trip)."""
        from gcp_storage_emulator.handlers import buckets

        buckets.create_bucket(name, self.server._storage)

    def wipe(self, keep_buckets: bool = False) -> None:
        """Delete every object (and bucket, unless ``keep_buckets``)."""
        self.server.wipe(keep_buckets=keep_buckets)


@contextlib.contextmanager
def gcs_emulator(default_bucket: str | None = None) -> Iterator[GcsEmulator]:
    """Start gcp-storage-emulator in memory on 127.0.0.1 with a free port; stop it when the block ends.

    ``default_bucket`` is created at start. The environment is not changed: use
    :meth:`GcsEmulator.environment` (sets ``STORAGE_EMULATOR_HOST``) for clients.
    """
    from gcp_storage_emulator.server import create_server

    server = create_server(LOOPBACK, 0, in_memory=True, default_bucket=default_bucket)
    api_thread = getattr(server, "_api", None)
    if isinstance(api_thread, threading.Thread):
        api_thread.daemon = True  # never keeps the interpreter alive, even if a caller forgets to stop it
    server.start()
    try:
        httpd = getattr(getattr(server, "_api", None), "_httpd", None)
        if httpd is None:
            raise RuntimeError("gcp-storage-emulator changed: cannot read its bound port (Server._api._httpd)")
        host, port = httpd.server_address[:2]
        logger.info("gcp-storage-emulator listening on http://%s:%d", host, port)
        yield GcsEmulator(host=str(host), port=int(port), server=server)
    finally:
        server.stop()
        logger.info("gcp-storage-emulator stopped")
