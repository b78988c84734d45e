"""A light closed-loop HTTP/1.1 load generator for ``bench_serving.py``.

``C`` connections (keep-alive), each sending one request at a time and the next as soon
as the answer is in, all driven by one asyncio loop in one thread over raw sockets: it
costs well under 0.1 ms of CPU per request, so on a 2-core machine almost all the CPU
stays with the server under test (a pool of httpx clients costs ~1 ms per request).

Bodies are prepared up front (``bodies`` is a list of raw request bodies sent in turn);
the generator checks every answer is HTTP 200 and, optionally, returns the answers.
Can run as a script (``python serving_load.py SPEC.json``) so the load lives in its own
process: it then prints a JSON summary on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""
    answers: list[bytes] | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            if not lat:
                return float("nan")
            return lat[min(len(lat) - 1, round(p / 100.0 * (len(lat) - 1)))]

        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.seconds,
            "rps": self.requests / self.seconds if self.seconds > 0 else 0.0,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "first_error": self.first_error,
        }


def build_request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    return head + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        return status, b"".join(parts)
    body = await reader.readexactly(length or 0)
    return status, body


async def run_load(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    *,
    concurrency: int = 8,
    duration_s: float = 10.0,
    max_requests: int | None = None,
    warmup_s: float = 1.0,
    content_type: str = "image/jpeg",
    keep_answers: bool = False,
    timeout_s: float = 60.0,
) -> LoadResult:
    """Closed loop: ``concurrency`` connections for ``warmup_s`` (not counted) then ``duration_s``."""
    requests = [build_request(host, port, path, b, content_type) for b in bodies]
    result = LoadResult(answers=[b""] * len(requests) if keep_answers else None)
    counter = 0
    t_start = time.perf_counter()
    t_measure = t_start + warmup_s
    t_end = t_measure + duration_s
    loop_stop = False

    async def worker(wid: int) -> None:
        nonlocal counter, loop_stop
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not loop_stop:
                now = time.perf_counter()
                if now >= t_end:
                    break
                if max_requests is not None and result.requests >= max_requests:
                    break
                index = counter % len(requests)
                counter += 1
                sent = time.perf_counter()
                writer.write(requests[index])
                try:
                    status, body = await asyncio.wait_for(_read_response(reader), timeout_s)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                done = time.perf_counter()
                if sent >= t_measure and done <= t_end:
                    if status == 200:
                        result.requests += 1
                        result.latencies_ms.append((done - sent) * 1000.0)
                    else:
                        result.errors += 1
                        result.first_error = result.first_error or f"HTTP {status}: {body[:200]!r}"
                if keep_answers and result.answers is not None:
                    result.answers[index] = body
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    result.seconds = min(time.perf_counter(), t_end) - t_measure
    return result


def _main() -> None:
    spec = json.loads(open(sys.argv[1]).read())  # noqa: SIM115 - tiny script
    bodies = [open(p, "rb").read() for p in spec["files"]]  # noqa: SIM115
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(
        run_load(
            spec["host"],
            spec["port"],
            spec["path"],
            bodies,
            concurrency=spec.get("concurrency", 8),
            duration_s=spec.get("duration_s", 10.0),
            warmup_s=spec.get("warmup_s", 1.0),
            content_type=spec.get("content_type", "image/jpeg"),
        )
    )
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    _main()
