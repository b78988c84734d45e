"""Staging many small files to moto's S3 server on 127.0.0.1: ``multicloud_cv.staging.stage`` against its peers.

Target: ours at least as fast (files/s) as the best peer. Peers, each on a fresh bucket of a
freshly reset server, same files:

* ``boto3 upload_file, sequential``: a plain loop over ``client.upload_file``;
* ``boto3 upload_file, 16 threads``: the same calls from a 16-thread pool, one shared client;
* ``s3fs put``: ``S3FileSystem.put(local_dir, "bucket/prefix", recursive=True)`` (async, batched).

Ours is ``stage(files, "s3://bucket/prefix", workers=16)``, which also lists the prefix first,
writes the MD5 as object metadata and reports progress. For information only (not a peer), the
run also times ``stage`` through its generic s3fs path and a second ``stage`` over the full
bucket (everything skipped: the resume case).

The server runs in this process (moto's ``ThreadedMotoServer``), so the client and server share
one interpreter; on a loaded machine every figure moves, the ratio less so. Run::

    python benchmarks/bench_staging.py                      # 5,000 files of 10 KB
    python benchmarks/bench_staging.py --files 1000 --json .bench/staging.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from multicloud_cv.staging import stage
from multicloud_cv.testing.emulators import MotoServer, moto_server

PEERS = ("boto3 upload_file, sequential", "boto3 upload_file, 16 threads", "s3fs put")
OURS = "ours: stage()"


def make_files(root: Path, count: int, size: int) -> dict[Path, str]:
    """``count`` files of ``size`` random bytes in 100 folders; reused when already there."""
    files: dict[Path, str] = {}
    for i in range(count):
        rel = f"d{i % 100:02d}/f{i:06d}.bin"
        path = root / rel
        if not path.exists() or path.stat().st_size != size:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
        files[path] = rel
    return files


def boto3_sequential(server: MotoServer, files: dict[Path, str], bucket: str, workers: int) -> None:
    client = server.client()
    for path, key in files.items():
        client.upload_file(str(path), bucket, f"data/{key}")


def boto3_pool(server: MotoServer, files: dict[Path, str], bucket: str, workers: int) -> None:
    import botocore.config

    client = server.client(config=botocore.config.Config(max_pool_connections=workers))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: client.upload_file(str(item[0]), bucket, f"data/{item[1]}"), files.items()))


def s3fs_put(server: MotoServer, files: dict[Path, str], bucket: str, workers: int) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": server.endpoint_url})
    root = next(iter(files)).parents[1]
    fs.put(f"{root}/", f"{bucket}/data", recursive=True)


def ours(server: MotoServer, files: dict[Path, str], bucket: str, workers: int) -> None:
    result = stage(files, f"s3://{bucket}/data", workers=workers)
    assert result.uploaded == len(files), result


def ours_s3fs(server: MotoServer, files: dict[Path, str], bucket: str, workers: int) -> None:
    result = stage(files, f"s3://{bucket}/data", workers=workers, storage_options={"skip_instance_cache": True})
    assert result.uploaded == len(files), result


CONTENDERS: dict[str, Callable[[MotoServer, dict[Path, str], str, int], None]] = {
    PEERS[0]: boto3_sequential,
    PEERS[1]: boto3_pool,
    PEERS[2]: s3fs_put,
    OURS: ours,
    "info: stage() via its s3fs path": ours_s3fs,
}


RESUME: list[float] = []
"""Seconds of a second ``stage`` over a bucket that already holds every file (all skipped)."""


def count_objects(server: MotoServer, bucket: str) -> int:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def time_contender(server: MotoServer, name: str, files: dict[Path, str], workers: int, round_: int) -> float:
    """Seconds for one contender on a freshly reset server and a new bucket; checks every object arrived."""
    server.reset()
    bucket = f"bench-{round_}-{list(CONTENDERS).index(name)}"
    server.create_bucket(bucket)
    start = time.perf_counter()
    CONTENDERS[name](server, files, bucket, workers)
    seconds = time.perf_counter() - start
    found = count_objects(server, bucket)
    if found != len(files):
        raise SystemExit(f"{name}: {found} objects in the bucket, expected {len(files)}")
    if name == OURS:
        start = time.perf_counter()
        result = stage(files, f"s3://{bucket}/data", workers=workers)
        resume_seconds = time.perf_counter() - start
        assert result.skipped == len(files), result
        RESUME.append(resume_seconds)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000, help="number of files (default 5000)")
    parser.add_argument("--size", type=int, default=10 * 1024, help="bytes per file (default 10240)")
    parser.add_argument("--workers", type=int, default=16, help="threads for the pool peer and for ours")
    parser.add_argument("--rounds", type=int, default=1, help="time every contender this many times (median kept)")
    parser.add_argument("--only", default="", help="comma-separated contender names to run (default: all)")
    parser.add_argument("--data", type=Path, default=None, help="where to keep the generated files (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--max-seconds", type=int, default=3600, help="abort the whole run after this long")
    args = parser.parse_args()
    signal.alarm(args.max_seconds)  # stops by itself whatever happens
    logging.basicConfig(level=logging.WARNING)

    names = [name for name in CONTENDERS if not args.only or any(part in name for part in args.only.split(","))]
    with tempfile.TemporaryDirectory(prefix="mcv-bench-staging-") as tmp:
        root = args.data or Path(tmp)
        files = make_files(root / f"files-{args.files}x{args.size}", args.files, args.size)
        times: dict[str, list[float]] = {name: [] for name in names}
        with moto_server() as server, server.environment():
            for round_ in range(args.rounds):
                for name in names:
                    seconds = time_contender(server, name, files, args.workers, round_)
                    times[name].append(seconds)
                    print(f"  round {round_ + 1}: {name}: {len(files) / seconds:.1f} files/s", file=sys.stderr)

    rate = {name: len(files) / statistics.median(values) for name, values in times.items()}
    peers = {name: value for name, value in rate.items() if name in PEERS}
    best_peer = max(peers, key=lambda name: peers[name]) if peers else None
    ratio = rate[OURS] / peers[best_peer] if best_peer and OURS in rate else None
    print(f"\nStaging {len(files)} files of {args.size} bytes to moto S3 on 127.0.0.1 ({args.rounds} round(s))\n")
    print("| contender | files/s | median s |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {rate[name]:.1f} | {statistics.median(values):.2f} |")
    if RESUME:
        print(
            f"| info: stage() again, all skipped | {len(files) / statistics.median(RESUME):.1f} | "
            f"{statistics.median(RESUME):.2f} |"
        )
    if ratio is not None:
        verdict = "meets" if ratio >= 1.0 else "MISSES"
        print(f"\nours / best peer ({best_peer}): {ratio:.2f}, {verdict} the target (>= 1.0)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "files": len(files),
                    "size": args.size,
                    "workers": args.workers,
                    "rounds": args.rounds,
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                    "seconds": times,
                    "files_per_second": rate,
                    "resume_seconds": RESUME,
                    "best_peer": best_peer,
                    "ratio_ours_to_best_peer": ratio,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
