"""S3 access of the emulated SageMaker: the moto server holds every bucket, as S3 holds them for the real service.

The emulator reads and writes objects through a boto3 client bound to the moto endpoint with the dummy
credentials, like the real service acting with the job's role. :func:`split_uri` accepts ``s3://bucket/key``
and ``https://s3.amazonaws.com/bucket/key`` (what ``ModelDataUrl`` may hold).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


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
    """A small, thread-safe facade over a boto3 S3 client bound to the moto server."""

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
