"""Cloud Storage as the emulated Vertex AI sees it: the in-process gcp-storage-emulator, read over its HTTP API.

:class:`Storage` wraps a google-cloud-storage client bound to the emulator (anonymous, one client per thread)
for ``gs://`` URIs: :meth:`~Storage.exists`, :meth:`~Storage.read`, :meth:`~Storage.download`,
:meth:`~Storage.write`, :meth:`~Storage.list`, :meth:`~Storage.download_prefix`. Bucket locations are read
from and written to the storage emulator's own bucket records (it records every bucket it creates as
multi-region ``US``, whatever location a client asked for; :meth:`~Storage.set_location` changes one).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


def split(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` -> ``(bucket, key)``; ``ValueError`` for anything else."""
    if not uri.startswith("gs://") or len(uri) <= 5:
        raise ValueError(f"{uri!r} is not a gs:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, key


class Storage:
    """gs:// access through the storage emulator at ``endpoint`` (``server``: its in-process server object)."""

    def __init__(self, endpoint: str, project: str, server: Any) -> None:
        self.endpoint = endpoint
        self.project = project
        self.server = server
        self._local = threading.local()

    def client(self) -> Any:
        """This thread's google-cloud-storage client."""
        client = getattr(self._local, "client", None)
        if client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage  # type: ignore[attr-defined]

            client = storage.Client(
                project=self.project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.endpoint},
            )
            self._local.client = client
        return client

    def _blob(self, uri: str) -> Any:
        bucket, key = split(uri)
        return self.client().bucket(bucket).blob(key)

    def bucket_record(self, name: str) -> dict[str, Any] | None:
        """The storage emulator's record of bucket ``name`` (``None`` when there is none)."""
        record = self.server._storage.get_bucket(name)
        return dict(record) if record else None

    def location(self, name: str) -> str | None:
        """The bucket's location as GCS reports it (``US``, ``US-CENTRAL1`` ...); ``None``: no such bucket."""
        record = self.bucket_record(name)
        return None if record is None else str(record.get("location", "US"))

    def create_bucket(self, name: str, location: str) -> None:
        """Create bucket ``name`` (when missing) in ``location`` (``US``, ``EU``: multi-region; else a region)."""
        from gcp_storage_emulator.handlers import buckets

        buckets.create_bucket(name, self.server._storage)
        self.set_location(name, location)

    def set_location(self, name: str, location: str) -> None:
        """Record ``location`` for an existing bucket."""
        storage = self.server._storage
        record = storage.buckets[name]
        record["location"] = location.upper()
        record["locationType"] = "multi-region" if location.upper() in ("US", "EU", "ASIA") else "region"

    def exists(self, uri: str) -> bool:
        """True when the object exists."""
        return bool(self._blob(uri).exists())

    def read(self, uri: str) -> bytes:
        """The object's bytes; ``google.api_core.exceptions.NotFound`` when missing."""
        return bytes(self._blob(uri).download_as_bytes())

    def download(self, uri: str, path: Path) -> None:
        """Download one object to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.read(uri))

    def write(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Upload ``data`` to ``uri``."""
        self._blob(uri).upload_from_string(data, content_type=content_type)

    def list(self, prefix_uri: str) -> list[str]:
        """The ``gs://`` URIs of the objects under a prefix."""
        bucket, prefix = split(prefix_uri)
        return [f"gs://{bucket}/{blob.name}" for blob in self.client().list_blobs(bucket, prefix=prefix)]

    def download_prefix(self, prefix_uri: str, dest: Path) -> int:
        """Download every object under ``prefix_uri`` (a folder URI) into ``dest``; the count."""
        bucket, prefix = split(prefix_uri.rstrip("/") + "/")
        count = 0
        for uri in self.list(f"gs://{bucket}/{prefix}"):
            relative = split(uri)[1][len(prefix) :]
            if not relative or relative.endswith("/") or ".." in Path(relative).parts:
                continue
            self.download(uri, dest / relative)
            count += 1
        return count
