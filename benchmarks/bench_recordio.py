"""RecordIO packing: ours (multicloud_cv.datasets.recordio) against MXNet's own ``tools/im2rec.py``.

    python benchmarks/bench_recordio.py [--n 60000] [--rounds 3] [--threads 2] [--resize 224] [--json]
    python benchmarks/bench_recordio.py --pass-through-only     # the pass-through rows alone, about a minute

Not part of the test suite; bounded in time (every subprocess has a timeout) and local only.
Writes ``.bench/recordio.json`` and prints a Markdown table (``--json``: the JSON document
alone on stdout, progress on stderr).

Data: ``--n`` JPEGs (default 60,000) of 300-500 px a side, quality 90 (~50-90 KB each, the
size of a typical photo dataset), cut deterministically from scikit-learn's sample photos
(random scale, crop, flip and brightness), in 1,000-file folders, and ``images.lst`` in
im2rec's own format (``index\\tlabel as %f\\tpath``, 10 classes). Built once into
``.bench/recordio-data/n<N>`` (two processes) and reused.

Peer: MXNet 1.9.1 from PyPI in its own venv, ``.bench/mxnet-venv`` (built on first run:
``python3.11 -m venv`` + ``pip install "mxnet==1.9.1" "numpy<1.24" "opencv-python-headless<4.9"``),
running the real ``mxnet/tools/im2rec.py`` shipped in the wheel. A small driver imports
mxnet and cv2 first and then runs im2rec.py as ``__main__`` (``runpy``), timing only
im2rec's own work, not the ~1.5 s mxnet import; ours is timed in-process after its imports
and a warm-up on 8 images. Both start from the same ``.lst`` (ours: ``read_lst`` + ``write_recordio``).

Measured, with a warm page cache (a first raw pass reads every file), interleaved over
``--rounds`` rounds in rotated order, median reported:

(a) ``raw read``: one Python loop opening and reading every file (the issue's floor), and
    ``raw copy``: the same loop appending every file to one output file, no framing (the
    floor of any packer, since the bytes must be written too);
(b) ``im2rec pass-through``: ``im2rec.py --pass-through`` (1 thread, its default);
(c) ``ours pass-through``: ``read_lst`` + ``write_recordio(encode="keep")`` (reads each file into the
    record buffer in the calling thread; a writing thread writes the full buffers);
(d) ``im2rec resize``: ``im2rec.py --resize 224 --quality 95 --num-thread 2`` (2 encoding
    processes, a writer process and the feeding process);
(e) ``ours resize``: ``write_recordio(resize=224, quality=95, threads=2)`` (2 worker processes
    decoding, resizing and encoding; the calling process writes).

Checks printed with the table: ours and im2rec's pass-through ``.rec`` and ``.idx`` are
byte-identical; resize outputs have the same image sizes record by record (and the mean
pixel difference between the two decoders/resamplers); and MXNet itself reads our files:
``mx.recordio.MXIndexedRecordIO`` + ``unpack`` over every record of both of our ``.rec``
(ids, labels, image bytes against the source files), ``mx.io.ImageRecordIter`` (MXNet's
C++ reader) over our resized ``.rec``, and ``mx.image.ImageDetIter`` over a small
detection ``.rec`` written by ``write_recordio`` (labels against ours).

Each phase starts after ``os.sync()``, so the kernel is not still flushing the 2.7 GB the
previous phase wrote (that flushing ran on the same 2 cores and slowed whichever phase came
next); a phase's own write-back still counts against it.

``foreign`` is the share of the machine's CPU used by other processes during a phase
(2 cores shared with other work distort every figure; rerun on a quiet machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH = ROOT / ".bench"
MXNET_VENV = BENCH / "mxnet-venv"
MXNET_PACKAGES = ["mxnet==1.9.1", "numpy<1.24", "opencv-python-headless<4.9"]
TICK = os.sysconf("SC_CLK_TCK")
CLASSES = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------------


def _photos() -> list[Any]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    scaled = []
    for photo in load_sample_images().images:
        image = Image.fromarray(np.asarray(photo))
        for scale in (1.2, 1.45, 1.7):
            size = (round(image.width * scale), round(image.height * scale))
            scaled.append(np.asarray(image.resize(size, Image.Resampling.BICUBIC)))
    return scaled


def _make_chunk(args: tuple[Path, int, int, int]) -> int:
    """Write images ``start..stop-1`` (deterministic per index)."""
    import numpy as np
    from PIL import Image

    root, start, stop, seed = args
    photos = _photos()
    for k in range(start, stop):
        rng = np.random.default_rng([seed, k])
        photo = photos[int(rng.integers(len(photos)))]
        height, width = photo.shape[:2]
        w, h = int(rng.integers(300, 501)), int(rng.integers(300, 501))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = photo[y : y + h, x : x + w].astype(np.float32)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = crop * rng.uniform(0.75, 1.25) + rng.normal(0, 3, crop.shape).astype(np.float32)
        folder = root / "images" / f"{k // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).save(folder / f"{k:06d}.jpg", quality=90)
    return stop - start


def build_data(n: int, seed: int = 0) -> Path:
    """``.bench/recordio-data/n<N>``: the JPEGs and ``images.lst``; reused when complete."""
    root = BENCH / "recordio-data" / f"n{n}-s{seed}"
    if (root / "COMPLETE").is_file():
        return root
    log(f"generating {n} JPEGs into {root} (once)...")
    started = time.perf_counter()
    chunks = [(root, start, min(n, start + 1000), seed) for start in range(0, n, 1000)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(_make_chunk, chunks), start=1):
            if done % 10 == 0:
                log(f"  {done * 1000} images, {time.perf_counter() - started:.0f} s")
    lines = [f"{k}\t{k % CLASSES:f}\timages/{k // 1000:03d}/{k:06d}.jpg\n" for k in range(n)]
    (root / "images.lst").write_text("".join(lines))
    (root / "COMPLETE").write_text("")
    log(f"  done in {time.perf_counter() - started:.0f} s")
    return root


def image_paths(data: Path) -> list[Path]:
    lines = (data / "images.lst").read_text().splitlines()
    return [data / line.rsplit("\t", 1)[1] for line in lines]


# -- the peer --------------------------------------------------------------------------------------


def mxnet_python() -> Path:
    """The MXNet venv's python, building the venv on first use."""
    python = MXNET_VENV / "bin" / "python"
    if not python.is_file():
        log(f"building {MXNET_VENV} (once, ~2 min)...")
        subprocess.run(["python3.11", "-m", "venv", str(MXNET_VENV)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *MXNET_PACKAGES], check=True, timeout=1200)
    return python


def im2rec_path(python: Path) -> Path:
    found = subprocess.run(
        [str(python), "-c", "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    script = Path(found) / "im2rec.py"
    if not script.is_file():
        raise SystemExit(f"im2rec.py not found in the mxnet wheel ({script})")
    return script


DRIVER = textwrap.dedent(
    """
    import json, os, runpy, sys, time, warnings
    warnings.filterwarnings("ignore")
    import mxnet, cv2  # imported before timing: the import is not im2rec's work
    script, argv = sys.argv[1], sys.argv[2:]
    sys.argv = [script, *argv]
    times0, started = os.times(), time.perf_counter()
    runpy.run_path(script, run_name="__main__")
    wall, times1 = time.perf_counter() - started, os.times()
    cpu = sum(times1[:4]) - sum(times0[:4])
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu}))
    """
)


def run_im2rec(python: Path, script: Path, data: Path, work: Path, extra: list[str]) -> dict[str, float]:
    """Run im2rec on a copy of images.lst in ``work``; its .rec/.idx land in ``work``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(data / "images.lst", work / "images.lst")
    done = subprocess.run(
        [str(python), "-c", DRIVER, str(script), str(work / "images.lst"), str(data), *extra],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    result = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode or result is None:
        raise SystemExit(f"im2rec failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return dict(json.loads(result[len("RESULT ") :]))


# -- ours and the floor ----------------------------------------------------------------------------


def run_raw(paths: list[Path]) -> dict[str, float]:
    times0, started = os.times(), time.perf_counter()
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    wall, times1 = time.perf_counter() - started, os.times()
    return {"wall": wall, "cpu": sum(times1[:2]) - sum(times0[:2]), "bytes": total}


def run_copy(paths: list[Path], work: Path) -> dict[str, float]:
    """The floor of any packer: read every file and append it to one file (no framing, no labels)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    times0, started = os.times(), time.perf_counter()
    with open(work / "all.bin", "wb", buffering=1 << 20) as out:
        for path in paths:
            with open(path, "rb") as handle:
                out.write(handle.read())
    wall, times1 = time.perf_counter() - started, os.times()
    shutil.rmtree(work)  # checked by nothing: free the space (a tmpfs --work holds it in memory)
    return {"wall": wall, "cpu": sum(times1[:2]) - sum(times0[:2])}


def run_ours(data: Path, work: Path, **options: Any) -> dict[str, float]:
    from multicloud_cv.datasets.lst import read_lst
    from multicloud_cv.datasets.recordio import write_recordio

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    times0, started = os.times(), time.perf_counter()
    dataset = read_lst(data / "images.lst", image_root=data)
    listed = time.perf_counter() - started
    write_recordio(dataset, work / "images.rec", work / "images.idx", **options)
    wall, times1 = time.perf_counter() - started, os.times()
    # children included, as for im2rec: the resize runs in worker processes, reaped before this returns
    return {"wall": wall, "cpu": sum(times1[:4]) - sum(times0[:4]), "read_lst": listed}


def warm_up(data: Path, work: Path) -> None:
    """Import and run our code once on a few images, as the im2rec driver imports mxnet before timing."""
    from dataclasses import replace

    from multicloud_cv.datasets.lst import read_lst
    from multicloud_cv.datasets.recordio import write_recordio

    dataset = read_lst(data / "images.lst", image_root=data)
    few = replace(dataset, images=dataset.images[:8])
    write_recordio(few, work / "warm.rec", work / "warm.idx")
    write_recordio(few, work / "warm.rec", work / "warm.idx", resize=224, threads=2)


# -- CPU accounting --------------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) of the whole machine so far."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK, sum(fields) / TICK


def measured(function: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
    """Run one phase after ``os.sync()``: the previous phase's dirty pages are on disk, not being flushed meanwhile."""
    os.sync()
    busy0, total0 = machine_busy()
    result = function(*args, **kwargs)
    busy1, total1 = machine_busy()
    result["foreign"] = max(0.0, (busy1 - busy0) - result["cpu"]) / max(total1 - total0, 1e-9)
    return dict(result)


# -- checks ----------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def compare_resized(ours: Path, theirs: Path, sample: int = 50) -> dict[str, Any]:
    """Record by record: same ids, labels and image sizes; mean pixel difference over a sample."""
    import io

    import numpy as np
    from PIL import Image

    from multicloud_cv.datasets.recordio import iter_records, unpack

    same_sizes = same_headers = True
    differences = []
    count = 0
    pairs = zip(iter_records(ours), iter_records(theirs), strict=True)
    for count, ((_, a), (_, b)) in enumerate(pairs, start=1):
        (ha, da), (hb, db) = unpack(a), unpack(b)
        same_headers &= ha == hb
        with Image.open(io.BytesIO(da)) as ia, Image.open(io.BytesIO(db)) as ib:
            same_sizes &= ia.size == ib.size
            if count <= sample and ia.size == ib.size:
                pa, pb = np.asarray(ia.convert("RGB"), dtype=np.float32), np.asarray(ib.convert("RGB"), np.float32)
                differences.append(float(np.abs(pa - pb).mean()))
    return {
        "records": count,
        "same_headers": same_headers,
        "same_image_sizes": same_sizes,
        "mean_abs_pixel_difference": round(statistics.fmean(differences), 2) if differences else None,
        "bytes_ours": ours.stat().st_size,
        "bytes_im2rec": theirs.stat().st_size,
    }


MXNET_CHECK = textwrap.dedent(
    """
    import hashlib, json, sys, warnings
    warnings.filterwarnings("ignore")
    import mxnet as mx
    import numpy as np
    spec = json.loads(sys.argv[1])
    out = {}
    # 1. MXIndexedRecordIO over every record of our pass-through .rec: ids, labels, bytes = source files
    lst = [line.rstrip("\\n").split("\\t") for line in open(spec["lst"])]
    rec = mx.recordio.MXIndexedRecordIO(spec["pt_idx"], spec["pt_rec"], "r")
    bad = 0
    for index, label, path in lst:
        header, image = mx.recordio.unpack(rec.read_idx(int(index)))
        source = open(spec["root"] + "/" + path, "rb").read()
        bad += header.id != int(index) or header.label != float(label) or header.flag != 0 or image != source
    out["indexed_passthrough"] = {"records": len(rec.keys), "mismatches": int(bad)}
    # 2. sequential MXRecordIO over our resized .rec: every image decodes at the expected size
    reader = mx.recordio.MXRecordIO(spec["rs_rec"], "r")
    n = bad = 0
    while True:
        item = reader.read()
        if item is None:
            break
        header, image = mx.recordio.unpack_img(item)
        bad += min(image.shape[:2]) != spec["resize"] or header.label != float(lst[n][1])
        n += 1
    out["sequential_resized"] = {"records": n, "mismatches": int(bad)}
    # 3. the C++ reader: ImageRecordIter over our resized .rec
    it = mx.io.ImageRecordIter(path_imgrec=spec["rs_rec"], path_imgidx=spec["rs_idx"], data_shape=(3, 224, 224),
                               batch_size=50, shuffle=False, preprocess_threads=1)
    batches = seen = 0
    labels_ok = True
    for batch in it:
        got = batch.label[0].asnumpy()[: 50 - batch.pad]
        want = np.array([float(lst[seen + i][1]) for i in range(len(got))])
        labels_ok &= bool((got == want).all())
        seen += len(got)
        batches += 1
        if batches == 4:
            break
    out["image_record_iter"] = {"batches": batches, "images": seen, "labels_match": labels_ok}
    # 4. detection: ImageDetIter over our detection .rec, labels against ours
    det = mx.image.ImageDetIter(batch_size=4, data_shape=(3, 64, 64), path_imgrec=spec["det_rec"],
                                path_imgidx=spec["det_idx"], shuffle=False)
    expected = json.load(open(spec["det_labels"]))
    got = []
    for batch in det:
        for row in batch.label[0].asnumpy()[: 4 - batch.pad]:
            got.append([[float(v) for v in obj] for obj in row if obj[0] >= 0])
    same = len(got) == len(expected) and all(
        len(a) == len(b) and all(np.allclose(x, y, atol=1e-5) for x, y in zip(a, b)) for a, b in zip(got, expected)
    )
    out["image_det_iter"] = {"images": len(got), "labels_match": bool(same)}
    print("RESULT " + json.dumps(out))
    """
)


def detection_rec(work: Path) -> tuple[Path, Path, Path]:
    """A small detection .rec written by write_recordio, and the labels MXNet should see (json)."""
    from multicloud_cv.datasets.recordio import write_recordio
    from multicloud_cv.testing.datasets import make_detection_dataset

    dataset = make_detection_dataset(work / "det-src", per_split={"train": 12}, size=(80, 60))
    dataset.images[:] = [image for image in dataset.images if image.boxes]  # ImageDetIter needs >= 1 box
    write_recordio(dataset, work / "det.rec", work / "det.idx")
    labels = [
        [
            [box.label, box.x_min / 80, box.y_min / 60, box.x_max / 80, box.y_max / 60]
            for box in image.boxes
        ]
        for image in dataset.images
    ]  # fmt: skip
    (work / "det-labels.json").write_text(json.dumps(labels))
    return work / "det.rec", work / "det.idx", work / "det-labels.json"


def mxnet_reads_ours(python: Path, data: Path, work: Path, resize: int) -> dict[str, Any]:
    det_rec, det_idx, det_labels = detection_rec(work)
    spec = {
        "lst": str(data / "images.lst"),
        "root": str(data),
        "pt_rec": str(work / "ours-pt" / "images.rec"),
        "pt_idx": str(work / "ours-pt" / "images.idx"),
        "rs_rec": str(work / "ours-resize" / "images.rec"),
        "rs_idx": str(work / "ours-resize" / "images.idx"),
        "resize": resize,
        "det_rec": str(det_rec),
        "det_idx": str(det_idx),
        "det_labels": str(det_labels),
    }
    done = subprocess.run(
        [str(python), "-c", MXNET_CHECK, json.dumps(spec)], capture_output=True, text=True, timeout=1800
    )
    result = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode or result is None:
        return {"error": (done.stdout[-1500:] + done.stderr[-1500:]).strip()}
    found: dict[str, Any] = json.loads(result[len("RESULT ") :])
    found["ok"] = (
        found["indexed_passthrough"]["mismatches"] == 0
        and found["sequential_resized"]["mismatches"] == 0
        and found["image_record_iter"]["labels_match"]
        and found["image_det_iter"]["labels_match"]
    )
    return found


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60_000, help="number of JPEGs (default 60000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--threads", type=int, default=2, help="threads/processes for the resize runs")
    parser.add_argument("--resize", type=int, default=224, help="shorter side for the resize runs")
    parser.add_argument("--json", action="store_true", help="print only the JSON document on stdout")
    parser.add_argument(
        "--pass-through-only", action="store_true", help="skip the resize runs and their checks (about a minute)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=BENCH / "recordio-work",
        help="where every tool writes its output (default .bench/recordio-work); a tmpfs folder such as "
        "/dev/shm/mcv-recordio takes the disk's write speed out of the figures (needs ~7 GB of memory)",
    )
    args = parser.parse_args()

    python = mxnet_python()
    script = im2rec_path(python)
    data = build_data(args.n)
    paths = image_paths(data)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log(f"warming the page cache: {run_raw(paths)['bytes'] / 1e6:.0f} MB in {len(paths)} files")
    warm_up(data, work)

    resize_flags = ["--resize", str(args.resize), "--quality", "95", "--num-thread", str(args.threads)]
    phases: dict[str, Any] = {
        "raw read": lambda: run_raw(paths),
        "raw copy (read + append)": lambda: run_copy(paths, work / "copy"),
        "im2rec pass-through": lambda: run_im2rec(python, script, data, work / "im2rec-pt", ["--pass-through"]),
        "ours pass-through": lambda: run_ours(data, work / "ours-pt", encode="keep"),
        "im2rec resize": lambda: run_im2rec(python, script, data, work / "im2rec-resize", resize_flags),
        "ours resize": lambda: run_ours(
            data, work / "ours-resize", resize=args.resize, quality=95, threads=args.threads
        ),
    }
    if args.pass_through_only:
        del phases["im2rec resize"], phases["ours resize"]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in phases}
    names = list(phases)
    for round_number in range(args.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            result = measured(phases[name])
            runs[name].append(result)
            log(f"round {round_number + 1}: {name:22s} {result['wall']:8.2f} s  foreign {result['foreign']:.0%}")

    def median(name: str, key: str = "wall") -> float:
        return statistics.median(run[key] for run in runs[name])

    n = len(paths)
    rows = {
        name: {
            "seconds": round(median(name), 3),
            "images_per_s": round(n / median(name), 1),
            "cpu_s": round(median(name, "cpu"), 2),
            "foreign": round(statistics.fmean(run["foreign"] for run in runs[name]), 3),
            "all_seconds": [round(run["wall"], 3) for run in runs[name]],
        }
        for name in names
    }
    rows["ours pass-through"]["read_lst_s"] = round(median("ours pass-through", "read_lst"), 3)
    packing = statistics.median(run["wall"] - run["read_lst"] for run in runs["ours pass-through"])
    ratios = {
        "ours_vs_im2rec_passthrough_speedup": median("im2rec pass-through") / median("ours pass-through"),
        "ours_passthrough_vs_raw_read": median("ours pass-through") / median("raw read"),
        "ours_packing_alone_vs_raw_read": packing / median("raw read"),  # read_lst left out, as the raw loop has none
        "raw_copy_vs_raw_read": median("raw copy (read + append)") / median("raw read"),
        "ours_passthrough_vs_raw_copy": median("ours pass-through") / median("raw copy (read + append)"),
    }
    targets = {
        "passthrough_at_least_as_fast_as_im2rec": ratios["ours_vs_im2rec_passthrough_speedup"] >= 1.0,
        "passthrough_within_1.5x_of_raw_read": ratios["ours_passthrough_vs_raw_read"] <= 1.5,
    }
    if not args.pass_through_only:
        ratios["ours_vs_im2rec_resize_speedup"] = median("im2rec resize") / median("ours resize")
        targets["resize_at_least_1.5x_im2rec"] = ratios["ours_vs_im2rec_resize_speedup"] >= 1.5
    log("checking outputs (byte identity, sizes, MXNet reading ours)...")
    checks = {
        "passthrough_rec_identical": sha256(work / "ours-pt" / "images.rec")
        == sha256(work / "im2rec-pt" / "images.rec"),
        "passthrough_idx_identical": (work / "ours-pt" / "images.idx").read_bytes()
        == (work / "im2rec-pt" / "images.idx").read_bytes(),
    }
    if not args.pass_through_only:
        checks["resize"] = compare_resized(work / "ours-resize" / "images.rec", work / "im2rec-resize" / "images.rec")
        checks["mxnet_reads_ours"] = mxnet_reads_ours(python, data, work, args.resize)
    document = {
        "benchmark": "recordio",
        "images": n,
        "source_bytes": run_raw(paths)["bytes"],
        "rounds": args.rounds,
        "threads": args.threads,
        "resize": args.resize,
        "output_folder": str(work),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "peer": "mxnet 1.9.1 tools/im2rec.py (from the wheel)",
        "results": rows,
        "ratios": {key: round(value, 3) for key, value in ratios.items()},
        "targets_met": targets,
        "checks": checks,
    }
    (BENCH / "recordio.json").write_text(json.dumps(document, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"\nRecordIO packing, {n} JPEGs ({document['source_bytes'] / 1e6:.0f} MB), median of {args.rounds} rounds\n")
    print("| run | seconds | images/s | CPU s | foreign |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['seconds']:.2f} | {row['images_per_s']:.0f} | {row['cpu_s']:.1f} | {row['foreign']:.0%} |"
        )
    print()
    for key, value in document["ratios"].items():
        print(f"{key}: {value:.2f}")
    for key, met in targets.items():
        print(f"target {key}: {'met' if met else 'NOT met'}")
    print(f"checks: {json.dumps(checks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
