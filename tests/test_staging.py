"""Staging to object storage: moto's S3 server and gcp-storage-emulator on 127.0.0.1, and file://.

Each server is started once for the module (port 0) and stopped at its end; every test uses its
own bucket. Clients reach the servers through the environment only (AWS_ENDPOINT_URL,
STORAGE_EMULATOR_HOST), as a user pointing staging at an emulator would.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from multicloud_cv.datasets.folder import read_folder
from multicloud_cv.datasets.model import Dataset, ImageRecord
from multicloud_cv.errors import ConfigError, DatasetError, ProviderNotInstalled, ServiceError
from multicloud_cv.staging import MD5_METADATA, StageProgress, _classify, stage, stage_dataset
from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.emulators import GcsEmulator, MotoServer, gcs_emulator, moto_server

pytestmark = pytest.mark.timeout(60)

_names = itertools.count()


def _bucket(tag: str) -> str:
    return f"stage-{tag}-{next(_names)}"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def gcs_server() -> Iterator[GcsEmulator]:
    with gcs_emulator() as server:
        yield server


@pytest.fixture
def s3(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The moto server, with the environment pointing boto3/s3fs at it for this test."""
    for name, value in s3_server.env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def gcs(gcs_server: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> GcsEmulator:
    for name, value in gcs_server.env().items():
        if value is not None:
            monkeypatch.setenv(name, value)
    return gcs_server


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    """10 small PNG files in train/test class folders."""
    return read_folder(make_tiny_dataset(tmp_path / "data", classes=2, train_per_class=3, test_per_class=2, size=16))


def _s3_objects(server: MotoServer, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"]: obj["Size"] for page in pages for obj in page.get("Contents", ())}


def _expected(dataset: Dataset, prefix: str) -> dict[str, int]:
    return {f"{prefix}{image.path}": dataset.absolute(image).stat().st_size for image in dataset.images}


def _rewrite_same_size(path: Path) -> bytes:
    """Change a file's content, keeping its size (only a checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


# --------------------------------------------------------------------------- S3 (moto server)


def test_s3_upload_lists_every_key_and_second_run_skips(s3: MotoServer, dataset: Dataset) -> None:
    bucket = _bucket("s3")
    s3.create_bucket(bucket)
    seen: list[StageProgress] = []

    first = stage(dataset, f"s3://{bucket}/runs/one", workers=4, progress=seen.append)

    assert (first.uploaded, first.skipped) == (10, 0)
    assert _s3_objects(s3, bucket) == _expected(dataset, "runs/one/")
    assert first.bytes == sum(_expected(dataset, "").values())
    assert seen[0].files_done == 0 and seen[-1].files_done == seen[-1].files_total == 10
    assert seen[-1].bytes_done == seen[-1].bytes_total == first.bytes
    image = dataset.images[0]
    assert first.uri_map[dataset.absolute(image)] == f"s3://{bucket}/runs/one/{image.path}"
    head = s3.client().head_object(Bucket=bucket, Key=f"runs/one/{image.path}")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"][MD5_METADATA] == hashlib.md5(dataset.absolute(image).read_bytes()).hexdigest()

    second = stage(dataset, f"s3://{bucket}/runs/one/", workers=4)
    assert (second.uploaded, second.skipped, second.bytes) == (0, 10, 0)


def test_s3_changed_file_is_the_only_one_uploaded_again(s3: MotoServer, dataset: Dataset) -> None:
    bucket = _bucket("chg")
    s3.create_bucket(bucket)
    stage(dataset, f"s3://{bucket}/p", workers=4)
    changed = dataset.images[3]
    new_content = _rewrite_same_size(dataset.absolute(changed))

    again = stage(dataset, f"s3://{bucket}/p", workers=4)

    assert (again.uploaded, again.skipped) == (1, 9)
    body = s3.client().get_object(Bucket=bucket, Key=f"p/{changed.path}")["Body"].read()
    assert body == new_content


def test_s3_resumes_after_an_interruption(s3: MotoServer, dataset: Dataset) -> None:
    bucket = _bucket("resume")
    s3.create_bucket(bucket)

    def stop_after_four(state: StageProgress) -> None:
        if state.files_done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage(dataset, f"s3://{bucket}/p", workers=2, progress=stop_after_four)
    done_before = _s3_objects(s3, bucket)
    assert 4 <= len(done_before) < 10  # files in flight finish whole; nothing new starts
    assert all(size > 0 for size in done_before.values())

    resumed = stage(dataset, f"s3://{bucket}/p", workers=2)

    assert resumed.skipped == len(done_before)
    assert resumed.uploaded == 10 - len(done_before)
    assert _s3_objects(s3, bucket) == _expected(dataset, "p/")


def test_s3_multipart_etag_falls_back_to_the_stored_md5(
    s3: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multipart object's ETag is no MD5: our stored metadata decides (present: skip; absent: upload again)."""
    import multicloud_cv.staging as staging

    monkeypatch.setattr(staging, "SINGLE_PUT_LIMIT", 2**20)
    monkeypatch.setattr(staging, "MULTIPART_THRESHOLD", 5 * 2**20)
    bucket = _bucket("mpu")
    s3.create_bucket(bucket)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (5 * 2**12 + 1))  # 5 MiB + 256 bytes
    client = s3.client()

    first = stage({big: "ours.bin"}, f"s3://{bucket}/p")  # boto3's managed multipart upload
    assert first.uploaded == 1
    head = client.head_object(Bucket=bucket, Key="p/ours.bin")
    assert "-" in head["ETag"] and head["Metadata"][MD5_METADATA] == hashlib.md5(big.read_bytes()).hexdigest()
    assert stage({big: "ours.bin"}, f"s3://{bucket}/p").skipped == 1

    upload = client.create_multipart_upload(Bucket=bucket, Key="p/theirs.bin")  # another tool: no metadata
    part = client.upload_part(
        Bucket=bucket, Key="p/theirs.bin", UploadId=upload["UploadId"], PartNumber=1, Body=big.read_bytes()
    )
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="p/theirs.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    result = stage({big: "theirs.bin"}, f"s3://{bucket}/p")
    assert (result.uploaded, result.skipped) == (1, 0)
    assert client.head_object(Bucket=bucket, Key="p/theirs.bin")["Metadata"][MD5_METADATA]


def test_s3_service_specific_endpoint_variable(
    s3: MotoServer, dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket("envs3")
    s3.create_bucket(bucket)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    assert stage(dataset, f"s3://{bucket}", workers=2).uploaded == 10
    assert set(_s3_objects(s3, bucket)) == {image.path for image in dataset.images}


def test_s3_through_s3fs_when_options_need_it(s3: MotoServer, dataset: Dataset) -> None:
    """Options the boto3 fast path does not take go to s3fs; same skip rules."""
    bucket = _bucket("s3fs")
    s3.create_bucket(bucket)
    options = {"skip_instance_cache": True}
    first = stage(dataset, f"s3://{bucket}/p", workers=4, storage_options=options)
    assert first.uploaded == 10
    assert _s3_objects(s3, bucket) == _expected(dataset, "p/")
    changed = dataset.images[0]
    _rewrite_same_size(dataset.absolute(changed))
    again = stage(dataset, f"s3://{bucket}/p", workers=4, storage_options=options)
    assert (again.uploaded, again.skipped) == (1, 9)


def test_s3_missing_bucket_is_a_clear_config_error(s3: MotoServer, dataset: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"^s3://no-such-bucket/p: bucket 'no-such-bucket' does not exist"):
        stage(dataset, "s3://no-such-bucket/p")
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist"):
        stage(dataset, "s3://no-such-bucket/p", storage_options={"skip_instance_cache": True})


def test_s3_unreachable_endpoint_is_a_service_error(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(ServiceError, match=r"cannot reach the storage endpoint .*re-run to resume"):
        stage(dataset, "s3://bkt/p", storage_options=options)


def test_s3_access_denied_and_missing_credentials_are_config_errors() -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")
    error = _classify(denied, "s3://bkt/p", "bkt", "upload a.png")
    assert isinstance(error, ConfigError)
    assert (
        str(error)
        == "s3://bkt/p: access denied (cannot upload a.png: AccessDenied); check the credentials and permissions"
    )
    error = _classify(NoCredentialsError(), "s3://bkt/p", "bkt", "list")
    assert isinstance(error, ConfigError) and "no usable credentials" in str(error)


# --------------------------------------------------------------------------- GCS (gcp-storage-emulator)


def _gcs_objects(server: GcsEmulator, bucket: str) -> dict[str, tuple[int, str]]:
    from google.cloud import storage

    client = storage.Client(project=server.project)
    return {blob.name: (blob.size, blob.content_type) for blob in client.list_blobs(bucket)}


def test_gcs_upload_skip_and_changed_file(gcs: GcsEmulator, dataset: Dataset) -> None:
    bucket = _bucket("gcs")
    gcs.create_bucket(bucket)

    first = stage(dataset, f"gs://{bucket}/data", workers=4)

    assert (first.uploaded, first.skipped) == (10, 0)
    listed = _gcs_objects(gcs, bucket)
    assert {name: size for name, (size, _) in listed.items()} == _expected(dataset, "data/")
    assert {content_type for _, content_type in listed.values()} == {"image/png"}
    image = dataset.images[0]
    assert first.uri_map[dataset.absolute(image)] == f"gs://{bucket}/data/{image.path}"

    assert stage(dataset, f"gs://{bucket}/data", workers=4).skipped == 10
    _rewrite_same_size(dataset.absolute(dataset.images[5]))
    again = stage(dataset, f"gs://{bucket}/data", workers=4)
    assert (again.uploaded, again.skipped) == (1, 9)


def test_gcs_missing_bucket_is_a_clear_config_error(gcs: GcsEmulator, dataset: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"^gs://nope-gcs/d: bucket 'nope-gcs' does not exist"):
        stage(dataset, "gs://nope-gcs/d", workers=2)


# --------------------------------------------------------------------------- file://


def test_file_destination_round_trip(dataset: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "staged"
    first = stage(dataset, dest.as_uri(), workers=3)
    assert first.uploaded == 10
    for image in dataset.images:
        assert (dest / image.path).read_bytes() == dataset.absolute(image).read_bytes()
    assert not list(dest.rglob("*.partial"))
    image = dataset.images[0]
    assert first.uri_map[dataset.absolute(image)] == (dest / image.path).as_uri()

    assert stage(dataset, str(dest)).skipped == 10  # a plain directory works too
    _rewrite_same_size(dataset.absolute(dataset.images[2]))
    again = stage(dataset, dest.as_uri())
    assert (again.uploaded, again.skipped) == (1, 9)


def test_stage_dataset_gives_an_image_ref_for_manifests(dataset: Dataset, tmp_path: Path) -> None:
    remote = ImageRecord(path="s3://elsewhere/x.png", labels=(0,))
    dataset.images.append(remote)
    result, image_ref = stage_dataset(dataset, (tmp_path / "out").as_uri())
    assert result.uploaded == 10
    first = dataset.images[0]
    assert image_ref(first) == (tmp_path / "out" / first.path).as_uri()
    assert image_ref(remote) == "s3://elsewhere/x.png"
    with pytest.raises(DatasetError, match="was not staged"):
        image_ref(ImageRecord(path="train/other.png"))


# --------------------------------------------------------------------------- bad input


def test_missing_local_file_is_named_before_anything_is_uploaded(tmp_path: Path) -> None:
    present = tmp_path / "a.png"
    present.write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"missing\.png: cannot stage a missing or unreadable file"):
        stage({present: "a.png", tmp_path / "missing.png": "b.png"}, (tmp_path / "out").as_uri())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["../escape.png", "/abs.png", "", "dir/"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"x")
    with pytest.raises(DatasetError, match="is not a relative file path"):
        stage({source: key}, (tmp_path / "out").as_uri())


def test_two_files_on_one_key_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "b.png").write_bytes(b"b")
    with pytest.raises(DatasetError, match=r"would both be staged as 'same\.png'"):
        stage({tmp_path / "a.png": "same.png", tmp_path / "b.png": "same.png"}, (tmp_path / "out").as_uri())


def test_zero_workers_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one worker"):
        stage({}, tmp_path.as_uri(), workers=0)


@pytest.mark.parametrize("uri", ["s3://", "gs://"])
def test_destination_without_bucket_is_refused(tmp_path: Path, uri: str) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"x")
    with pytest.raises(ConfigError, match="no bucket in the destination"):
        stage({source: "a.png"}, uri)


@pytest.mark.skipif(importlib.util.find_spec("adlfs") is not None, reason="adlfs is installed")
def test_az_without_adlfs_names_the_install_command(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"x")
    with pytest.raises(ProviderNotInstalled, match=r"az:// .*pip install adlfs"):
        stage({source: "a.png"}, "az://container/prefix")


@pytest.mark.parametrize("where", ["s3", "file"])
def test_file_vanishing_during_staging_is_named(
    where: str, request: pytest.FixtureRequest, dataset: Dataset, tmp_path: Path
) -> None:
    """A file deleted after the checks (here by the first progress call) is a DatasetError naming it."""
    if where == "s3":
        server = request.getfixturevalue("s3")
        bucket = _bucket("gone")
        server.create_bucket(bucket)
        dest = f"s3://{bucket}/p"
    else:
        dest = (tmp_path / "out").as_uri()
    victim = dataset.absolute(dataset.images[-1])

    def delete_victim(state: StageProgress) -> None:
        if state.files_done == 0:
            victim.unlink()

    with pytest.raises(DatasetError, match=rf"^{victim}: cannot read the file to stage \(No such file"):
        stage(dataset, dest, workers=1, progress=delete_victim)
