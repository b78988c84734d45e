"""Throughput of the local endpoint vs in-process onnxruntime vs MLflow's scoring server.

    python benchmarks/bench_serving.py [--rounds 3] [--duration 6] [--no-mlflow]

Not part of the test suite; bounded in time (a few minutes, stops by itself) and sends
traffic to 127.0.0.1 only. Writes ``.bench/serving.json`` and prints a Markdown table.

What is measured, on the same few hundred real-photo JPEGs (~300x300, cut from
scikit-learn's and, when installed, scikit-image's sample photos) and the same model
(EfficientNet-Lite0, 224 px, 10 classes, uint8 NHWC graph with normalisation inside):

(a) ``in-process``: one Python loop, ``decode()`` + ``session.run`` on one image at a
    time (the shared ``mcv_local.preprocess.decode`` and the same onnxruntime session
    settings as the server). Measured with onnxruntime's thread spinning on and off; the
    faster of the two is the baseline (the stricter comparison).
(b) ``ours``: ``python -m mcv_local.serving.server`` with its defaults, 8 concurrent
    keep-alive connections each sending one JPEG per request (closed loop).
(c) ``mlflow``: ``mlflow models serve --env-manager local`` (its default: 1 uvicorn
    worker) on a pyfunc that receives the same JPEG bytes base64-encoded in a
    ``dataframe_split``, decodes them with the very same ``decode()`` and scores them with
    MLflow's own ``mlflow.onnx`` wrapper of the same ``model.onnx`` (MLflow's default
    onnxruntime session options): identical work, only the serving stack differs. For
    reference, also: the same pyfunc with ``onnx_session_options`` tuned the way our
    server tunes its sessions (no spinning), and MLflow's native ``mlflow.onnx`` flavour
    (client-side decode, tensor JSON of ~0.5 MB per image).

``CPU ms/image``: CPU time of the server's process group (for in-process: of the
benchmark loop) per image answered, load generator excluded.

Load generator: ``serving_load.py``, one asyncio thread over raw keep-alive sockets in its
own process (~0.06 ms CPU per request, so the 2 cores stay with the server under test;
a pool of httpx clients would cost ~1 ms per request). Measurements of (a), (b), (c) are
interleaved over several rounds (order rotated) and the median is reported, because other
processes may share the machine: before each phase the benchmark waits (at most
``--quiet-wait`` seconds) for a quiet second, and the CPU share others took during each
phase is reported as ``foreign``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"
PLUGIN_ROOT = ROOT / "plugins" / "local"
HERE = Path(__file__).resolve().parent
for path in (str(PLUGIN_ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import serving_model  # noqa: E402

from mcv_local.serving.session import OnnxModel  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MLFLOW_VENV = BENCH_DIR / "mlflow-venv"
MLFLOW_PACKAGES = ["mlflow", "onnx", "onnxruntime", "pillow", "numpy"]


# -- CPU accounting ------------------------------------------------------------------------


def system_busy() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) of the whole machine so far."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]  # noqa: SIM115
    return (sum(fields) - fields[3] - fields[4]) / TICK, sum(fields) / TICK


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of process group ``pgid``."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        except OSError:
            continue
        if int(stat[2]) == pgid:
            total += (int(stat[11]) + int(stat[12])) / TICK
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWindow:
    """Measures, over a phase, our processes' CPU and the share taken by anything else."""

    def __init__(self, pgid: int | None = None) -> None:
        self.pgid = pgid

    def __enter__(self) -> CpuWindow:
        self.busy0, self.total0 = system_busy()
        self.own0 = time.process_time() + children_cpu()
        self.group0 = group_cpu(self.pgid) if self.pgid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        busy1, total1 = system_busy()
        self.server_cpu = (group_cpu(self.pgid) - self.group0) if self.pgid else 0.0
        own = time.process_time() + children_cpu() - self.own0 + self.server_cpu
        self.own_cpu = own
        span = max(total1 - self.total0, 1e-9)
        self.foreign_share = max(0.0, (busy1 - self.busy0) - own) / span


# -- contenders -----------------------------------------------------------------------------


def measure_in_process(model: OnnxModel, images: list[bytes], duration: float) -> dict[str, Any]:
    for data in images[:5]:
        model.predict_pixels(model.decode(data)[None])
    count = 0
    with CpuWindow() as window:
        start = time.perf_counter()
        while time.perf_counter() - start < duration:
            data = images[count % len(images)]
            model.predict_pixels(model.decode(data)[None])
            count += 1
        seconds = time.perf_counter() - start
    return {
        "images_per_s": count / seconds,
        "images": count,
        "cpu_ms_per_image": window.own_cpu / count * 1000 if count else float("nan"),
        "foreign_cpu_share": window.foreign_share,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline_s: float, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    else:  # the group leader is gone; make sure no worker outlives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)


def wait_quiet(max_wait_s: float, threshold: float = 0.10) -> float:
    """Wait (at most ``max_wait_s``) for a second in which the machine is < ``threshold`` busy.

    Between phases nothing of ours runs, so what keeps the CPU busy is someone else's;
    returns the busy share of the last second looked at.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, total0 = system_busy()
        time.sleep(1.0)
        busy1, total1 = system_busy()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if share < threshold or time.monotonic() >= deadline:
            return share


def wait_idle(pgid: int, timeout_s: float = 60.0) -> None:
    """Wait until the server has finished what the last phase left in flight (< 5% CPU for 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = group_cpu(pgid)
        time.sleep(0.5)
        if group_cpu(pgid) - before < 0.025:
            return


def run_load(
    port: int, path: str, files: list[Path], content_type: str, concurrency: int, duration: float, work: Path
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "files": [str(f) for f in files],
        "concurrency": concurrency,
        "duration_s": duration,
        "warmup_s": 1.0,
        "content_type": content_type,
    }
    spec_path = work / f"load-{port}.json"
    spec_path.write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, str(HERE / "serving_load.py"), str(spec_path)],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


class Endpoint:
    """A server process (own process group) and how to load it."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        port: int,
        health: str,
        path: str,
        files: list[Path],
        content_type: str,
        log: Path,
    ) -> None:
        self.name, self.port, self.path, self.files, self.content_type = name, port, path, files, content_type
        self.health = f"http://127.0.0.1:{port}{health}"
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.log = log

    def measure(self, concurrency: int, duration: float, work: Path) -> dict[str, Any]:
        with CpuWindow(self.process.pid) as window:
            load = run_load(self.port, self.path, self.files, self.content_type, concurrency, duration, work)
        wait_idle(self.process.pid)  # requests still in flight must not spill into the next phase
        served = load["requests"] * (duration + 1.0) / duration  # the warm-up second was served too
        return {
            "images_per_s": load["rps"],
            "p50_ms": load["p50_ms"],
            "p99_ms": load["p99_ms"],
            "requests": load["requests"],
            "errors": load["errors"],
            "first_error": load["first_error"],
            "cpu_ms_per_image": window.server_cpu / served * 1000 if served else float("nan"),
            "foreign_cpu_share": window.foreign_share,
        }


# -- MLflow ------------------------------------------------------------------------------------


def ensure_mlflow_venv(timeout_s: float) -> Path | None:
    """The MLflow environment, kept apart from the project's (created once, cached)."""
    mlflow_bin = MLFLOW_VENV / "bin" / "mlflow"
    if mlflow_bin.exists():
        return MLFLOW_VENV
    print(f"creating {MLFLOW_VENV} with {' '.join(MLFLOW_PACKAGES)} (once) ...", flush=True)
    try:
        venv.create(MLFLOW_VENV, with_pip=True)
        subprocess.run(
            [str(MLFLOW_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *MLFLOW_PACKAGES],
            check=True,
            timeout=timeout_s,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"MLflow could not be installed, skipping it: {exc}", flush=True)
        shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
        return None
    return MLFLOW_VENV


def package_for_mlflow(env_dir: Path, kind: str, model_dir: Path) -> Path:
    out = BENCH_DIR / f"mlflow-{kind}"
    if (out / "MLmodel").exists() and (out / "MLmodel").stat().st_mtime >= (model_dir / "model.onnx").stat().st_mtime:
        return out
    shutil.rmtree(out, ignore_errors=True)
    args = [str(model_dir), str(out)] + ([str(PLUGIN_ROOT)] if kind.startswith("pyfunc") else [])
    subprocess.run(
        [str(env_dir / "bin" / "python"), str(HERE / "serving_mlflow.py"), f"save-{kind}", *args],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


def start_mlflow(env_dir: Path, kind: str, model_dir: Path, files: list[Path], work: Path) -> Endpoint:
    packaged = package_for_mlflow(env_dir, kind, model_dir)
    port = free_port()
    env = dict(os.environ)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # its uvicorn, not ours
    env.pop("PYTHONPATH", None)
    env["MLFLOW_TRACKING_URI"] = (work / "mlruns").as_uri()
    command = [
        str(env_dir / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(packaged),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    endpoint = Endpoint(
        f"mlflow-{kind}",
        command,
        env,
        port,
        "/ping",
        "/invocations",
        files,
        "application/json",
        work / f"mlflow-{kind}.log",
    )
    try:
        wait_http(endpoint.health, 120, endpoint.process)
    except BaseException:
        stop_group(endpoint.process)
        raise
    return endpoint


def mlflow_pyfunc_bodies(images: list[bytes], work: Path) -> list[Path]:
    folder = work / "mlflow-pyfunc-bodies"
    folder.mkdir(exist_ok=True)
    paths = []
    for i, data in enumerate(images):
        body = {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(data).decode()]]}}
        path = folder / f"{i}.json"
        path.write_text(json.dumps(body))
        paths.append(path)
    return paths


def mlflow_onnx_bodies(model: OnnxModel, images: list[bytes], work: Path, limit: int = 100) -> list[Path]:
    folder = work / "mlflow-onnx-bodies"
    folder.mkdir(exist_ok=True)
    paths = []
    for i, data in enumerate(images[:limit]):
        body = {"inputs": {"image": model.decode(data)[None].tolist()}}
        path = folder / f"{i}.json"
        path.write_text(json.dumps(body, separators=(",", ":")))
        paths.append(path)
    return paths


# -- checks ---------------------------------------------------------------------------------


def check_answers(name: str, url: str, files: list[Path], content_type: str, expected: np.ndarray, parse: Any) -> None:
    """The endpoint computes what in-process onnxruntime computes (first few images)."""
    import httpx

    with httpx.Client(timeout=60, trust_env=False) as client:
        for i, path in enumerate(files[:6]):
            response = client.post(url, content=path.read_bytes(), headers={"content-type": content_type})
            response.raise_for_status()
            got = parse(response.json())
            if not np.allclose(got, expected[i], atol=1e-4):
                raise AssertionError(f"{name} answered {got} for image {i}, in-process gives {expected[i]}")


def ours_scores(answer: dict[str, Any]) -> np.ndarray:
    scores = np.zeros(serving_model.NUM_CLASSES)
    for item in answer["labels"]:
        scores[item["index"]] = item["confidence"]
    return scores


def mlflow_scores(answer: dict[str, Any]) -> np.ndarray:
    predictions = answer["predictions"]
    if isinstance(predictions, dict):
        predictions = predictions["scores"]
    return np.asarray(predictions, dtype=np.float64)[0]


# -- main -------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds}
    for key in ("images_per_s", "p50_ms", "p99_ms", "cpu_ms_per_image", "foreign_cpu_share"):
        values = [r[key] for r in rounds if key in r and r[key] == r[key]]
        if values:
            out[key] = statistics.median(values)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300, help="number of JPEGs (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per contender and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")
    parser.add_argument("--no-mlflow-onnx", action="store_true", help="skip MLflow's native onnx flavour")
    parser.add_argument("--no-mlflow-tuned", action="store_true", help="skip MLflow with tuned session options")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each phase, wait up to this many seconds for other processes to leave the CPU (0: don't)",
    )
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for our server")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "serving.json")
    args = parser.parse_args(argv)

    started = time.monotonic()
    BENCH_DIR.mkdir(exist_ok=True)
    work = BENCH_DIR / "serving-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print("building the model and images ...", flush=True)
    model_dir = BENCH_DIR / "serving-model"
    serving_model.build_model(model_dir)
    images = serving_model.build_images(args.images)
    image_files = []
    for i, data in enumerate(images):
        path = work / f"img{i:04d}.jpg"
        path.write_bytes(data)
        image_files.append(path)
    mean_kb = sum(map(len, images)) / len(images) / 1024

    model_spin = OnnxModel(model_dir, allow_spinning=True)
    model_nospin = OnnxModel(model_dir, allow_spinning=False)
    expected = model_nospin.predict_pixels(np.stack([model_nospin.decode(d) for d in images[:6]]))

    endpoints: list[Endpoint] = []
    results: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    try:
        # (b) ours
        port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        ready = work / "ready.json"
        command = [
            sys.executable,
            "-m",
            "mcv_local.serving.server",
            "--model-dir",
            str(model_dir),
            "--port",
            str(port),
            "--ready-file",
            str(ready),
            "--ttl",
            "1800",
            *args.server_arg,
        ]
        ours = Endpoint(
            "ours", command, env, port, "/healthz", "/v1/predict", image_files, "image/jpeg", work / "ours.log"
        )
        endpoints.append(ours)
        wait_http(ours.health, 60, ours.process)
        check_answers(
            "ours", f"http://127.0.0.1:{port}/v1/predict?top_k=10", image_files, "image/jpeg", expected, ours_scores
        )

        # (c) MLflow
        mlflow_eps: list[Endpoint] = []
        if not args.no_mlflow:
            env_dir = ensure_mlflow_venv(timeout_s=900)
            if env_dir is None:
                notes.append("MLflow could not be installed; (c) skipped")
            else:
                bodies = mlflow_pyfunc_bodies(images, work)
                kinds = ["pyfunc"] + ([] if args.no_mlflow_tuned else ["pyfunc-tuned"])
                for kind in kinds:
                    print(f"starting mlflow models serve ({kind}) ...", flush=True)
                    endpoint = start_mlflow(env_dir, kind, model_dir, bodies, work)
                    endpoints.append(endpoint)
                    mlflow_eps.append(endpoint)
                    check_answers(
                        endpoint.name,
                        f"http://127.0.0.1:{endpoint.port}/invocations",
                        bodies,
                        "application/json",
                        expected,
                        mlflow_scores,
                    )
                if not args.no_mlflow_onnx:
                    onnx_bodies = mlflow_onnx_bodies(model_nospin, images, work)
                    print("starting mlflow models serve (onnx flavour) ...", flush=True)
                    native = start_mlflow(env_dir, "onnx", model_dir, onnx_bodies, work)
                    endpoints.append(native)
                    mlflow_eps.append(native)
                    check_answers(
                        "mlflow-onnx",
                        f"http://127.0.0.1:{native.port}/invocations",
                        onnx_bodies,
                        "application/json",
                        expected,
                        mlflow_scores,
                    )

        print(f"measuring: {args.rounds} rounds x {args.duration:g} s per contender ...", flush=True)
        contenders: list[tuple[str, Any]] = [
            ("in-process (spinning)", model_spin),
            ("in-process (no spinning)", model_nospin),
            *((endpoint.name, endpoint) for endpoint in [ours, *mlflow_eps]),
        ]
        for endpoint in endpoints:
            wait_idle(endpoint.process.pid)
        for round_no in range(args.rounds):
            shift = round_no % len(contenders)  # rotate the order: no contender always runs first
            for name, contender in contenders[shift:] + contenders[:shift]:
                if args.quiet_wait > 0:
                    wait_quiet(args.quiet_wait)
                if isinstance(contender, OnnxModel):
                    result = measure_in_process(contender, images, args.duration)
                else:
                    result = contender.measure(args.concurrency, args.duration, work)
                results.setdefault(name, []).append(result)
            line = ", ".join(f"{k} {v[-1]['images_per_s']:.1f}/s" for k, v in results.items())
            print(f"  round {round_no + 1}: {line}", flush=True)
    finally:
        for endpoint in endpoints:
            stop_group(endpoint.process)

    summary = {name: summarise(rounds) for name, rounds in results.items()}
    spin, nospin = summary["in-process (spinning)"], summary["in-process (no spinning)"]
    baseline_name = max(("in-process (spinning)", "in-process (no spinning)"), key=lambda n: summary[n]["images_per_s"])
    baseline = summary[baseline_name]["images_per_s"]
    ours_ips = summary["ours"]["images_per_s"]
    ratios: dict[str, float] = {"ours_vs_in_process": ours_ips / baseline}
    if "mlflow-pyfunc" in summary:
        ratios["ours_vs_mlflow"] = ours_ips / summary["mlflow-pyfunc"]["images_per_s"]
    if "mlflow-pyfunc-tuned" in summary:
        ratios["ours_vs_mlflow_tuned_session"] = ours_ips / summary["mlflow-pyfunc-tuned"]["images_per_s"]
    if "mlflow-onnx" in summary:
        ratios["ours_vs_mlflow_onnx_flavour"] = ours_ips / summary["mlflow-onnx"]["images_per_s"]
    for name, rounds in results.items():
        errors = sum(r.get("errors", 0) for r in rounds)
        if errors:
            first = next(r["first_error"] for r in rounds if r.get("first_error"))
            notes.append(f"{name}: {errors} failed requests (first: {first})")
    foreign = max(r.get("foreign_cpu_share", 0.0) for r in summary.values())
    if foreign > 0.10:
        notes.append(
            f"other processes used up to {foreign:.0%} of the machine's CPU during a phase: the figures are those "
            "of a shared machine; CPU ms/image (the server's, or the in-process loop's) is the steadier comparison"
        )

    rows = [
        ("in-process, sequential, spinning", spin),
        ("in-process, sequential, no spinning", nospin),
        (f"ours, HTTP, {args.concurrency} clients", summary["ours"]),
    ]
    if "mlflow-pyfunc" in summary:
        rows.append((f"MLflow pyfunc (same decode in server), {args.concurrency} clients", summary["mlflow-pyfunc"]))
    if "mlflow-pyfunc-tuned" in summary:
        rows.append(
            (
                f"MLflow pyfunc, session tuned like ours (no spinning), {args.concurrency} clients",
                summary["mlflow-pyfunc-tuned"],
            )
        )
    if "mlflow-onnx" in summary:
        rows.append(
            (f"MLflow onnx flavour (client decodes, tensor JSON), {args.concurrency} clients", summary["mlflow-onnx"])
        )
    print()
    print(
        f"EfficientNet-Lite0 224 px, {len(images)} JPEGs (~{mean_kb:.0f} KB, ~300x300), {os.cpu_count()} CPUs, "
        f"median of {args.rounds} rounds x {args.duration:g} s"
    )
    print()
    print("| contender | images/s | p50 ms | p99 ms | CPU ms/image | foreign CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, data in rows:
        print(
            f"| {label} | {fmt(data.get('images_per_s'))} | {fmt(data.get('p50_ms'))} | {fmt(data.get('p99_ms'))} "
            f"| {fmt(data.get('cpu_ms_per_image'), 2)} | {fmt(100 * data.get('foreign_cpu_share', 0), 0)}% |"
        )
    print()
    print(
        f"| ratio | value | target |\n|---|---:|---:|\n| ours / in-process ({baseline_name}) | "
        f"{ratios['ours_vs_in_process']:.2f} | >= 0.90 |"
    )
    if "ours_vs_mlflow" in ratios:
        print(f"| ours / MLflow pyfunc | {ratios['ours_vs_mlflow']:.2f} | >= 1.60 |")
    if "ours_vs_mlflow_tuned_session" in ratios:
        print(f"| ours / MLflow pyfunc, tuned session | {ratios['ours_vs_mlflow_tuned_session']:.2f} | (reference) |")
    if "ours_vs_mlflow_onnx_flavour" in ratios:
        print(f"| ours / MLflow onnx flavour | {ratios['ours_vs_mlflow_onnx_flavour']:.2f} | (reference) |")
    for note in notes:
        print(f"\nnote: {note}")

    report = {
        "model": "efficientnet-lite0, 224 px, 10 classes, uint8 NHWC",
        "images": len(images),
        "mean_jpeg_kb": mean_kb,
        "cpus": os.cpu_count(),
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "baseline": baseline_name,
        "results": summary,
        "ratios": ratios,
        "notes": notes,
        "load_generator": "serving_load.py: one asyncio thread, raw keep-alive sockets, closed loop",
        "server_args": args.server_arg,
        "wall_s": time.monotonic() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
