"""HTTP endpoint for an exported model: Starlette + uvicorn on a loopback address.

Routes:

* ``POST /v1/predict`` - body: the raw encoded image bytes (any image content type or
  ``application/octet-stream``); query ``top_k`` and ``threshold``. Answers the shared
  ``Prediction`` JSON; 400 ``{"error": ...}`` for a body that is not an image or a bad
  query parameter, 413 for a body above ``--max-body-mb``.
* ``GET /healthz`` - ``{"status": "ok", "model_id": ...}``.
* ``GET /v1/metadata`` - labels, task, image_size, channels, model_id, backbone.

Throughput: the event loop only does HTTP. Request bodies are gathered by
:class:`MicroBatcher` into batches (up to ``--max-batch``, waiting at most
``--max-wait-ms`` for company when a worker finds the queue short, and leaving a fair
share of the queue to idle workers); each batch is decoded (the shared
``mcv_local.preprocess.decode``; Pillow and onnxruntime release the GIL) and scored with
one ``session.run`` on one of the inference threads - by default one per core, each
running onnxruntime single-threaded - so the cores work as independent pipelines while
the event loop reads the next requests. ``--decode-threads N`` moves decoding to a
separate pool instead; ``--inference-threads 1 --intra-op-threads 2`` gives one
multi-threaded session (lower latency for a single client, lower throughput).

A model directory that is a Custom Vision ONNX export (``model.onnx`` in the service's export
signature + ``labels.txt``) is served by :mod:`mcv_local.serving.customvision_onnx` with the
same routes and answers (one request at a time per thread, no micro-batching).

Command line::

    python -m mcv_local.serving.server --model-dir DIR --port P [--host 127.0.0.1]
        [--ttl SECONDS] [--ready-file PATH]

Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT, ``--ttl``), 2 for bad arguments or
a model directory that cannot be loaded, 3 when the port is already in use (nothing is
loaded and no ready-file is written in that case).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcv_local.serving.errors import InvalidImage, ModelLoadError, PortInUse, ServingError
from mcv_local.serving.responses import error_response, http_error, invalid_image_response, read_body
from mcv_local.serving.session import OnnxModel, check_options
from multicloud_cv.workers import usable_cpus

log = logging.getLogger("mcv_local.serving")

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_PORT_IN_USE = 3
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024


@dataclass
class ServerOptions:
    """Tuning knobs. ``None`` picks the default for this machine's cores.

    Defaults (measured on 2 cores, see ``benchmarks/bench_serving.py``): one inference
    thread per core, each running onnxruntime single-threaded (``intra_op_threads=1``)
    and decoding its own batch just before the run (``decode_threads=0``): independent
    per-core pipelines with no intra-op synchronisation, which beats one 2-thread session
    fed by a decode pool. Thread spinning is off: it burns the cores the other pipeline,
    the event loop and the decoder need. A second session with ``solo_threads`` (default:
    all cores) scores a small batch that runs alone, for the latency of a lone client.
    """

    max_batch: int = 8
    max_wait_ms: float = 2.0
    inference_threads: int | None = None  # concurrent session.run calls (default: cores)
    intra_op_threads: int | None = None  # onnxruntime threads per session.run (default: cores / inference)
    decode_threads: int | None = None  # 0: decode on the inference threads (default)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allow_spinning: bool = False
    solo_threads: int | None = None  # threads of the session for a batch that runs alone (0: none; default: cores)

    def resolved(self) -> ServerOptions:
        cores = usable_cpus()
        inference = max(1, self.inference_threads or cores)
        intra = max(1, self.intra_op_threads or cores // inference)
        decode = max(0, self.decode_threads if self.decode_threads is not None else 0)
        solo = max(0, self.solo_threads if self.solo_threads is not None else cores)
        if solo <= intra:
            solo = 0  # the regular session is already that wide
        return ServerOptions(
            max_batch=max(1, self.max_batch),
            max_wait_ms=max(0.0, self.max_wait_ms),
            inference_threads=inference,
            intra_op_threads=intra,
            decode_threads=decode,
            max_body_bytes=self.max_body_bytes,
            allow_spinning=self.allow_spinning,
            solo_threads=solo,
        )


class MicroBatcher:
    """Gathers concurrent requests into batches and scores each batch with one ``session.run``.

    ``submit(item)`` (on the event loop) queues an image and returns a future of its score row; an
    item is either decoded pixels (``uint8 [H, W, C]``) or encoded bytes, which the
    inference thread then decodes itself just before the run (raising
    :class:`InvalidImage` to that request only). Each of the ``workers`` loops takes what
    is queued (up to ``max_batch``); when that is fewer and more requests are on their way
    (``arriving``: bodies being read or decoded), it waits at most ``max_wait_s`` for them,
    then runs the batch on its own thread. It never waits for requests that have not
    arrived: that would only leave a core idle.

    ``solo_model`` (optional) is the same model in a session with more onnxruntime
    threads: a small batch that would run alone (no other worker busy, nothing queued) uses
    it, so a lone client gets the latency of a multi-threaded run while a loaded server
    keeps its single-threaded per-core pipelines.
    """

    def __init__(
        self,
        model: OnnxModel,
        *,
        max_batch: int,
        max_wait_s: float,
        workers: int,
        solo_model: OnnxModel | None = None,
    ) -> None:
        self.model = model
        self.solo_model = solo_model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.workers = workers
        self._queue: asyncio.Queue[tuple[np.ndarray | bytes, asyncio.Future[np.ndarray]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mcv-infer")
        self.batches = 0
        self.images = 0
        self.run_seconds = 0.0
        self._idle = 0  # workers waiting for a first item
        self._busy = 0  # workers running a batch
        self.arriving = 0  # requests between their first byte and submit() (kept by the HTTP handler)
        self.solo_batches = 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._run(), name=f"mcv-batcher-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, item: np.ndarray | bytes) -> asyncio.Future[np.ndarray]:
        """Queue one image now; the returned future resolves to its score row."""
        assert self._queue is not None, "MicroBatcher.start() was not called"
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return future

    def _process(self, items: list[np.ndarray | bytes], model: OnnxModel) -> list[np.ndarray | Exception]:
        """Runs on an inference thread: decode what is still encoded, then one session.run."""
        out: list[np.ndarray | Exception] = []
        pixels: list[np.ndarray] = []
        for item in items:
            if isinstance(item, np.ndarray):
                pixels.append(item)
                out.append(item)
                continue
            try:
                decoded = self.model.decode(item)
            except InvalidImage as exc:
                out.append(exc)
            else:
                pixels.append(decoded)
                out.append(decoded)
        if pixels:
            start = time.perf_counter()
            scores = model.predict_pixels(np.stack(pixels))
            self.run_seconds += time.perf_counter() - start
            rows = iter(range(scores.shape[0]))
            out = [scores[next(rows)] if isinstance(o, np.ndarray) else o for o in out]
        return out

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            self._idle += 1
            try:
                items = [await queue.get()]
            finally:
                self._idle -= 1
            # leave a fair share of what is queued to the workers that are idle right now
            limit = self.max_batch
            if self._idle:
                limit = min(limit, -(-(1 + queue.qsize()) // (1 + self._idle)))
            deadline = loop.time() + self.max_wait_s
            while len(items) < limit:
                if not queue.empty():
                    items.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0 or self.arriving <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            items = [item for item in items if not item[1].done()]  # clients that went away
            if not items:
                continue
            model = self.model
            if self.solo_model is not None and self._busy == 0 and queue.empty() and len(items) <= 2:
                model = self.solo_model
                self.solo_batches += 1
            self._busy += 1
            try:
                results = await loop.run_in_executor(self._pool, self._process, [data for data, _ in items], model)
            except asyncio.CancelledError:
                for _, future in items:
                    if not future.done():
                        future.cancel()
                raise
            except Exception as exc:
                log.exception("inference failed for a batch of %d", len(items))
                results = [exc] * len(items)
            else:
                self.batches += 1
                self.images += len(items)
            finally:
                self._busy -= 1
            for result, (_, future) in zip(results, items, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _parse_query(params: Any) -> tuple[int | None, float | None]:
    top_k: Any = params.get("top_k")
    threshold: Any = params.get("threshold")
    if top_k is not None:
        try:
            top_k = int(top_k)
        except ValueError:
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}") from None
    if threshold is not None:
        try:
            threshold = float(threshold)
        except ValueError:
            raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    return check_options(top_k, threshold)


def create_app(model: OnnxModel, options: ServerOptions | None = None) -> Any:
    """The Starlette application serving ``model`` (batcher started by its lifespan)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    opts = (options or ServerOptions()).resolved()
    solo_model = None
    if opts.solo_threads:
        solo_model = OnnxModel(model.model_dir, intra_op_threads=opts.solo_threads, allow_spinning=opts.allow_spinning)
        solo_model.predict_pixels(np.zeros((1, model.image_size, model.image_size, model.channels), np.uint8))
    batcher = MicroBatcher(
        model,
        max_batch=opts.max_batch,
        max_wait_s=opts.max_wait_ms / 1000.0,
        workers=opts.inference_threads or 1,
        solo_model=solo_model,
    )
    decode_pool = (
        ThreadPoolExecutor(max_workers=opts.decode_threads, thread_name_prefix="mcv-decode")
        if opts.decode_threads
        else None
    )
    max_body = opts.max_body_bytes
    health_body = json.dumps({"status": "ok", "model_id": model.model_id}).encode()
    metadata_body = json.dumps(model.metadata_dict()).encode()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            if decode_pool is not None:
                decode_pool.shutdown(wait=True, cancel_futures=True)
            if batcher.batches:
                log.info(
                    "served %d images in %d batches (%d alone; mean batch %.1f, mean run %.1f ms)",
                    batcher.images,
                    batcher.batches,
                    batcher.solo_batches,
                    batcher.images / batcher.batches,
                    batcher.run_seconds * 1000.0 / batcher.batches,
                )

    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        try:
            top_k, threshold = _parse_query(request.query_params)
        except ValueError as exc:
            return error_response(400, str(exc))
        batcher.arriving += 1
        try:
            body = await read_body(request, max_body)
            if not isinstance(body, bytes):
                return body  # the error answer
            if decode_pool is None:
                pending = batcher.submit(body)
            else:
                pixels = await asyncio.get_running_loop().run_in_executor(decode_pool, model.decode, body)
                pending = batcher.submit(pixels)
        except InvalidImage as exc:
            return invalid_image_response(exc, request)
        finally:
            batcher.arriving -= 1
        try:
            scores = await pending
        except InvalidImage as exc:
            return invalid_image_response(exc, request)
        except Exception as exc:
            log.exception("prediction failed")
            return error_response(500, f"prediction failed: {type(exc).__name__}: {exc}")
        result = model.to_result(scores, (time.perf_counter() - start) * 1000.0, top_k=top_k, threshold=threshold)
        return Response(json.dumps(result).encode(), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(health_body, media_type="application/json")

    async def metadata(request: Request) -> Response:
        return Response(metadata_body, media_type="application/json")

    app = Starlette(
        routes=[
            Route("/v1/predict", predict, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/metadata", metadata, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.model = model
    app.state.batcher = batcher
    app.state.options = opts
    return app


# -- process entry point ------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` now (port 0 picks a free port); raises :class:`PortInUse`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; never a live listener
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(port, host) from None
        raise
    sock.set_inheritable(False)
    return sock


def write_ready_file(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mcv_local.serving.server",
        description="Serve an exported model directory over HTTP on a loopback address.",
    )
    parser.add_argument("--model-dir", required=True, type=Path, help="directory holding model.onnx")
    parser.add_argument("--port", required=True, type=int, help="TCP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--ttl", type=float, default=None, help="shut down by itself after this many seconds")
    parser.add_argument("--ready-file", type=Path, default=None, help="write {pid, port, url} here once serving")
    parser.add_argument("--max-batch", type=int, default=ServerOptions.max_batch, help="largest batch per session.run")
    parser.add_argument(
        "--max-wait-ms", type=float, default=ServerOptions.max_wait_ms, help="longest wait for a batch to fill"
    )
    parser.add_argument(
        "--inference-threads", type=int, default=None, help="concurrent session.run calls (default: cores)"
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=None,
        help="onnxruntime threads per run (default: cores / inference threads)",
    )
    parser.add_argument(
        "--decode-threads", type=int, default=None, help="image decoding threads; 0 decodes on the inference threads"
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="let onnxruntime threads spin between runs (faster alone, worse when shared)",
    )
    parser.add_argument(
        "--solo-threads",
        type=int,
        default=None,
        help="onnxruntime threads for a batch that runs alone (0: no such session; default: cores)",
    )
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_BYTES / 1024 / 1024)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.ttl is not None and args.ttl <= 0:
        parser.error(f"--ttl must be a positive number of seconds, got {args.ttl}")
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address (127.0.0.1, ::1, localhost), got {args.host!r}")
    if args.max_body_mb <= 0:
        parser.error("--max-body-mb must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    host = "127.0.0.1" if args.host == "localhost" else args.host

    stop_requested: list[int] = []
    server_ref: list[Any] = []
    failed: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        # While uvicorn serves, its own handler takes the signal (graceful shutdown) and
        # re-raises it once done: it lands here, and main() then returns 0.
        if not stop_requested and not (server_ref and server_ref[0].started):
            log.info("received %s, shutting down", signal.Signals(signum).name)
        stop_requested.append(signum)
        if server_ref:
            server_ref[0].should_exit = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # 1. take the port first: a busy port fails fast, before any model is loaded
    try:
        sock = bind_socket(host, args.port)
    except PortInUse as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    except OSError as exc:
        print(f"cannot bind {host}:{args.port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{port}"

    # 2. load the model
    options = ServerOptions(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        inference_threads=args.inference_threads,
        intra_op_threads=args.intra_op_threads,
        decode_threads=args.decode_threads,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        allow_spinning=args.spin,
        solo_threads=args.solo_threads,
    ).resolved()
    from mcv_local.serving.customvision_onnx import CustomVisionOnnx, create_customvision_app, is_customvision_folder
    from mcv_local.serving.detection_app import create_detection_app, load_detector, model_task

    try:
        if is_customvision_folder(Path(args.model_dir)):
            foreign = CustomVisionOnnx(args.model_dir, intra_op_threads=options.intra_op_threads)
            foreign.run(np.zeros((foreign.height, foreign.width, 3), np.uint8))  # warm-up
            app = create_customvision_app(foreign, options.max_body_bytes)
            served_id = foreign.model_id
        elif model_task(Path(args.model_dir)) == "detection":
            detector = load_detector(Path(args.model_dir), intra_op_threads=options.intra_op_threads)
            detector.detect(np.zeros((64, 64, 3), np.uint8), 0.5, 1)  # warm-up
            app = create_detection_app(detector, options.max_body_bytes)
            served_id = detector.metadata.get("mcv.model_id", "")
        else:
            model = OnnxModel(
                args.model_dir, intra_op_threads=options.intra_op_threads, allow_spinning=options.allow_spinning
            )
            model.predict_pixels(np.zeros((1, model.image_size, model.image_size, model.channels), np.uint8))
            app = create_app(model, options)
            served_id = model.model_id
    except ModelLoadError as exc:
        sock.close()
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    if stop_requested:
        sock.close()
        return EXIT_OK

    # 3. serve
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
        server_header=False,
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:
                return
            log.info(
                "serving model %s on %s (batch <= %d, wait <= %.1f ms, %d inference x %d intra-op threads, %s, "
                "solo session: %s)",
                served_id,
                url,
                options.max_batch,
                options.max_wait_ms,
                options.inference_threads,
                options.intra_op_threads,
                f"{options.decode_threads} decode threads" if options.decode_threads else "decoding on them",
                f"{options.solo_threads} threads" if options.solo_threads else "off",
            )
            if args.ready_file is not None:
                try:
                    write_ready_file(args.ready_file, {"pid": os.getpid(), "port": port, "url": url})
                except OSError as exc:
                    failed.append(f"cannot write the ready file {args.ready_file}: {exc}")
                    self.should_exit = True
                    return
            if args.ttl is not None:
                asyncio.get_running_loop().call_later(args.ttl, self._expire)

        def _expire(self) -> None:
            log.info("--ttl of %g s reached, shutting down", args.ttl)
            self.should_exit = True

    server = _Server(config)
    server_ref.append(server)
    if stop_requested:
        server.should_exit = True
    try:
        server.run(sockets=[sock])
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    log.info("stopped%s", f" ({signal.Signals(stop_requested[0]).name})" if stop_requested else "")
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    try:
        sys.exit(main())
    except ServingError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)
