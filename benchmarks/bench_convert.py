"""Format conversion: COCO with 100,000 boxes on 20,000 images to every other detection format, against datumaro.

What it measures (each in a fresh subprocess; peak memory is the child's ``ru_maxrss`` from
``os.wait4``, the child's own ``getrusage``):

* ours: ``read_dataset`` + ``write_dataset`` for COCO -> VOC, COCO -> each other detection
  format registered in ``multicloud_cv.datasets.formats.FORMATS`` at run time (a format whose
  module is not there yet, or has no ``write``, is skipped and named), and VOC -> COCO.
  Writers that take ``copy_images`` get ``copy_images=False`` ("save_media off": the output
  names the original images instead of holding copies); the others place images as usual
  (hard links on one filesystem), which the table marks.
* the peer: datumaro 1.13 (PyPI) in its own virtual environment ``.bench/datumaro-venv``
  (created with its own pip on first run), ``Dataset.import_from(...).export(..., save_media=False)``
  for COCO -> VOC (``voc_detection``), COCO -> YOLO (``yolo``) and VOC -> COCO
  (``coco_instances``). Both tools read the same input files: the synthetic COCO, and for
  VOC -> COCO the VOC dataset that our writer made from it (with its JPEGImages, untimed).
* the floors: ``json.load`` of the COCO file; reading and ``ElementTree``-parsing each of
  the VOC input's XML files (the XML counterpart of ``json.load``; reading the bytes alone is
  reported too); writing as many files holding as many bytes as a conversion's output has,
  with ``os.open``/``os.write`` (the cheapest way Python has; images that the output
  hard-links to their source are not counted: a link is not a write).
  A conversion's floor is its input floor plus its output floor. Each conversion is timed
  interleaved with its two floors (conversion, input floor, output floor, then again), the
  best of three rounds each, so that the machine's speed, which swings up to 2x from minute
  to minute on a shared VM, is the same for a figure and its floor.
  For VOC -> COCO the output is one JSON file, whose byte-writing floor is next to nothing;
  ``json.dumps`` of that output document (loaded untimed) plus the write is reported
  beside it as the serialising floor, the output counterpart of ``json.load``.

The synthetic dataset (seeded): one ``annotations/instances_train.json`` (80 categories with
COCO's non-contiguous ids, boxes spread at random over the images, some images without
any) and ``images/train/`` with one tiny JPEG per image, hard links to four template files
whose sizes match the JSON, so nothing decodes pixels and the images cost no disk. That is
the layout datumaro's COCO importer needs (an ``images/`` folder) and ours reads too.

Figures reported per conversion: the child process's wall time (interpreter start and
imports included: what a user waits; datumaro's imports take about a second), the time of
the conversion alone as the child measured it after its imports (each run after ``os.sync()``:
creating 20,000 files right after removing the previous run's 20,000 took up to 6x longer
while the kernel was still flushing the removal), the child's CPU time
(user + sys: steadier than wall time when other work shares the machine, and telling when
a tool waits on the disk), and peak RSS. The load average at start and end is printed and
stored: on a 2-core machine any other load distorts every figure, the file-writing floors
most. Targets
(issue): at least 3x faster than datumaro (process wall time), and within 1.5x of the floor
(conversion time against floor time). Results go to a table on stdout and to
``.bench/convert.json``.

Usage::

    . .venv/bin/activate
    python benchmarks/bench_convert.py                                # full scale: 20,000 images, 100,000 boxes
    python benchmarks/bench_convert.py --images 2000 --boxes 10000    # a quick check
    python benchmarks/bench_convert.py --no-peer                      # ours and the floors only
    python benchmarks/bench_convert.py --repeat 3                     # best of 3 for every figure

Options: ``--work DIR`` (default ``.bench/convert``; the data is generated once per scale and
kept), ``--json PATH``, ``--timeout S`` per child (default 600). Needs about 50 MB of disk
per 20,000 images plus the outputs (removed after each run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench" / "datumaro-venv"
PEER_SPEC = "datumaro==1.13.*"
TEMPLATE_SIZES = [(640, 480), (480, 640), (800, 600), (1024, 768)]
#: COCO 2017's category ids: 80 of 1..90.
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
#: (our target, datumaro's exporter) for the peer's conversions from COCO.
PEER_FROM_COCO = {"voc": "voc_detection", "yolo": "yolo"}


# ---------------------------------------------------------------- children (run in a fresh process)


def child_ours(src: str, src_fmt: str, dst: str, dst_fmt: str, copy_images: str) -> dict:
    t0 = time.perf_counter()
    from multicloud_cv.datasets.formats import read_dataset, write_dataset

    t1 = time.perf_counter()
    dataset = read_dataset(src, src_fmt)
    t2 = time.perf_counter()
    options = {"copy_images": False} if copy_images == "no" else {}
    write_dataset(dataset, dst, dst_fmt, **options)
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "read_s": t2 - t1, "write_s": t3 - t2, "work_s": t3 - t1}


def child_peer(src: str, src_fmt: str, dst: str, dst_fmt: str) -> dict:
    import logging

    logging.disable(logging.WARNING)
    t0 = time.perf_counter()
    from datumaro.components.dataset import Dataset

    t1 = time.perf_counter()
    dataset = Dataset.import_from(src, src_fmt)
    dataset.export(dst, dst_fmt, save_media=False)
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "work_s": t2 - t1}


def child_json_load(src: str) -> dict:
    t0 = time.perf_counter()
    with open(src, "rb") as handle:
        json.load(handle)
    return {"work_s": time.perf_counter() - t0}


def child_json_dump(folder: str) -> dict:
    """``json.dumps`` of every JSON file under ``folder`` (loaded untimed) and writing it: what serialising costs."""
    documents = []
    for dirpath, _, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(".json"):
                with open(os.path.join(dirpath, name), "rb") as handle:
                    documents.append((os.path.join(dirpath, name + ".dumped"), json.load(handle)))
    t0 = time.perf_counter()
    for path, document in documents:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document))
    return {"work_s": time.perf_counter() - t0, "files": len(documents)}


def child_read_files(folder: str) -> dict:
    t0 = time.perf_counter()
    total = files = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as handle:
                total += len(handle.read())
            files += 1
    return {"work_s": time.perf_counter() - t0, "files": files, "bytes": total}


def child_parse_xml(folder: str) -> dict:
    import xml.etree.ElementTree as ET

    t0 = time.perf_counter()
    files = 0
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            ET.fromstring(handle.read())
        files += 1
    return {"work_s": time.perf_counter() - t0, "files": files}


def child_write_files(dst: str, files: str, total: str) -> dict:
    count, size = int(files), int(total)
    payload = b"x" * (size // max(count, 1))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    t0 = time.perf_counter()
    os.makedirs(dst)
    for i in range(count):  # os.open/os.write: the cheapest way Python has (what our VOC writer does)
        fd = os.open(os.path.join(dst, f"{i:07d}.txt"), flags, 0o666)
        os.write(fd, payload)
        os.close(fd)
    return {"work_s": time.perf_counter() - t0}


CHILDREN: dict[str, Callable[..., dict]] = {
    "ours": child_ours,
    "peer": child_peer,
    "json_load": child_json_load,
    "json_dump": child_json_dump,
    "read_files": child_read_files,
    "parse_xml": child_parse_xml,
    "write_files": child_write_files,
}


# ---------------------------------------------------------------- parent


def run_child_rusage(python: str, args: list[str], timeout: float) -> dict:
    """Run this script as ``--child``; return its JSON plus wall seconds and peak RSS (MiB).

    The child is reaped with ``os.wait4``, which returns that child's own rusage (``ru_maxrss``),
    not the maximum over every child so far as ``getrusage(RUSAGE_CHILDREN)`` would.
    """
    cmd = [python, str(Path(__file__).resolve()), "--child", *args]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-convert-{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
    text, errors = out_path.read_text(), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    if proc.returncode != 0:
        tail = (errors.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    result = json.loads(text.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["peak_mib"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # steadier than wall time on a busy machine
    return result


def best(python: str, args: list[str], repeat: int, timeout: float, cleanup: Path | None = None) -> dict:
    """The run with the least wall time of ``repeat`` runs (peak memory: the largest seen); see :func:`interleaved`."""
    return interleaved([(python, args, cleanup)], repeat, timeout)[0]


def interleaved(jobs: list[tuple[str, list[str], Path | None]], rounds: int, timeout: float) -> list[dict]:
    """Run the commands of ``jobs`` round-robin ``rounds`` times; each one's run with the least wall time
    (peak memory: the largest seen), or its first error (it is not run again).

    Before each run the command's ``cleanup`` folder is removed and ``os.sync()`` flushes the last
    run's (and the removal's) metadata, so that it is not being written to disk during this one.

    A conversion and its floors are timed side by side, one after the other in every round, so
    that a change in the machine's speed between minutes (this VM's swings reach 2x) shifts
    both and not their ratio.
    """
    runs: list[list[dict]] = [[] for _ in jobs]
    for _ in range(rounds):
        for (python, args, cleanup), seen in zip(jobs, runs, strict=True):
            if seen and "error" in seen[-1]:
                continue
            if cleanup is not None and cleanup.exists():
                shutil.rmtree(cleanup)
            os.sync()
            seen.append(run_child_rusage(python, args, timeout))
    chosen = []
    for seen in runs:
        if "error" in seen[-1]:
            chosen.append(seen[-1])
            continue
        pick = dict(min(seen, key=lambda r: r["wall_s"]))
        pick["peak_mib"] = max(r["peak_mib"] for r in seen)
        chosen.append(pick)
    return chosen


def tree_size(folder: Path) -> tuple[int, int, int]:
    """Files written fresh under ``folder`` and their bytes, and how many are hard links (placed images)."""
    files = total = links = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            stat = os.lstat(os.path.join(dirpath, name))
            if stat.st_nlink > 1:
                links += 1
            else:
                files += 1
                total += stat.st_size
    return files, total, links


def make_coco(root: Path, n_images: int, n_boxes: int, seed: int = 0) -> Path:
    """Write the synthetic COCO dataset under ``root`` (once per scale); return the JSON's path."""
    ann = root / "annotations" / "instances_train.json"
    stamp = root / "done.json"
    want = {"images": n_images, "boxes": n_boxes, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return ann
    if root.exists():
        shutil.rmtree(root)
    from PIL import Image

    rng = random.Random(seed)
    images_dir = root / "images" / "train"
    images_dir.mkdir(parents=True)
    templates = root / "templates"
    templates.mkdir()
    for w, h in TEMPLATE_SIZES:
        Image.new("RGB", (w, h), (90, 120, 150)).save(templates / f"{w}x{h}.jpg", quality=50)
    images, sizes = [], []
    for i in range(n_images):
        w, h = TEMPLATE_SIZES[rng.randrange(len(TEMPLATE_SIZES))]
        name = f"{i:012d}.jpg"
        os.link(templates / f"{w}x{h}.jpg", images_dir / name)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        sizes.append((w, h))
    annotations = []
    for a in range(n_boxes):
        image = rng.randrange(n_images)
        w, h = sizes[image]
        bw, bh = round(rng.uniform(4, w / 3), 2), round(rng.uniform(4, h / 3), 2)
        x, y = round(rng.uniform(0, w - bw), 2), round(rng.uniform(0, h - bh), 2)
        annotations.append(
            {
                "id": a + 1,
                "image_id": image + 1,
                "category_id": COCO_IDS[rng.randrange(len(COCO_IDS))],
                "bbox": [x, y, bw, bh],
                "area": round(bw * bh, 2),
                "iscrowd": 0,
                "segmentation": [],
            }
        )
    categories = [{"id": cid, "name": f"class_{cid:02d}", "supercategory": "thing"} for cid in COCO_IDS]
    ann.parent.mkdir(parents=True)
    document = {"info": {"description": "synthetic"}, "licenses": [], "images": images}
    document |= {"annotations": annotations, "categories": categories}
    ann.write_text(json.dumps(document))
    stamp.write_text(json.dumps(want))
    return ann


def ensure_peer() -> Path | None:
    python = PEER_VENV / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import datumaro"], capture_output=True).returncode == 0:
        return python
    print(f"installing {PEER_SPEC} into {PEER_VENV} (once) ...", flush=True)
    log = PEER_VENV.parent / "datumaro-install.log"
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        ok = (
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], stdout=handle, stderr=handle).returncode == 0
        )
        ok = (
            ok
            and subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_SPEC],
                stdout=handle,
                stderr=handle,
            ).returncode
            == 0
        )
    if not ok:
        print(f"datumaro could not be installed; see {log}; running without the peer", flush=True)
        return None
    return python


def our_targets() -> tuple[list[tuple[str, bool]], list[str]]:
    """Detection formats to convert COCO into: ``[(name, takes copy_images)]``, and the skipped ones with why."""
    import inspect

    from multicloud_cv.datasets.formats import FORMATS

    targets, skipped = [], []
    for name, spec in FORMATS.items():
        if name == "coco" or "detection" not in spec.tasks:
            continue
        try:
            module = spec.load()
        except ImportError as exc:
            skipped.append(f"{name} (module missing: {exc.name or exc})")
            continue
        write = getattr(module, "write", None)
        if write is None:
            skipped.append(f"{name} (no write())")
            continue
        try:
            takes = "copy_images" in inspect.signature(write).parameters
        except (TypeError, ValueError):
            takes = False
        targets.append((name, takes))
    return targets, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "convert")
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "convert.json")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    args.loadavg_start = os.getloadavg()
    work = args.work.resolve()
    data = work / f"data-{args.images}-{args.boxes}"
    print(f"generating {args.images} images / {args.boxes} boxes in {data} ...", flush=True)
    coco_json = make_coco(data / "coco", args.images, args.boxes)
    coco_dir = coco_json.parent.parent
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    me = sys.executable

    # The VOC input of VOC -> COCO: our VOC of the synthetic COCO, images hard-linked in (untimed).
    voc_input = data / "voc"
    if not (voc_input / "labelmap.txt").is_file():
        if voc_input.exists():
            shutil.rmtree(voc_input)
        made = run_child_rusage(me, ["ours", str(coco_dir), "coco", str(voc_input), "voc", "yes"], args.timeout)
        if "error" in made:
            print(f"cannot prepare the VOC input: {made['error']}")
            return 1

    targets, skipped = our_targets()
    if skipped:
        print("skipped (not in this checkout): " + "; ".join(skipped), flush=True)
    peer = None if args.no_peer else ensure_peer()

    floors: dict[str, dict] = {}
    rounds = max(3, args.repeat)  # conversions and floors: the best of three at least, interleaved
    floors["read_voc_files"] = best(me, ["read_files", str(voc_input / "Annotations")], rounds, args.timeout)
    input_floors = {"coco": ["json_load", str(coco_json)], "voc": ["parse_xml", str(voc_input / "Annotations")]}

    def timed_with_floors(label: str, command: list[str], src_fmt: str, dst: Path) -> tuple[dict, dict, dict]:
        """Our conversion, its input floor and its output floor, interleaved round by round.

        A first, untimed run of the conversion tells the output floor how many files and bytes
        to write (hard-linked images are not counted: a link is not a write).
        """
        warm = run_child_rusage(me, command, args.timeout)
        if "error" in warm:
            return warm, {}, {}
        files, total, links = tree_size(dst)
        target = out / "floor"
        jobs = [
            (me, command, dst),
            (me, input_floors[src_fmt], None),
            (me, ["write_files", str(target), str(files), str(total)], target),
        ]
        ours, floor_in, floor_out = interleaved(jobs, rounds, args.timeout)
        shutil.rmtree(target, ignore_errors=True)
        floor_out |= {"files": files, "bytes": total, "hard_links_not_counted": links}
        floors[f"{label}: input ({input_floors[src_fmt][0]})"] = floor_in
        floors[f"{label}: output (write {files} files)"] = floor_out
        return ours, floor_in, floor_out

    rows = []
    jobs: list[tuple[str, Path, str, str, bool, str | None]] = [
        (f"coco -> {name}", coco_dir, "coco", name, takes, PEER_FROM_COCO.get(name)) for name, takes in targets
    ]
    jobs.append(("voc -> coco", voc_input, "voc", "coco", True, "coco_instances"))
    for name in PEER_FROM_COCO:
        if name not in {t for t, _ in targets}:
            jobs.append((f"coco -> {name}", coco_dir, "coco", name, False, PEER_FROM_COCO[name]))
    present = {t for t, _ in targets} | {"coco"}
    for label, src, src_fmt, dst_fmt, takes, peer_fmt in jobs:
        row: dict = {"conversion": label, "copy_images": not takes}
        dst = out / dst_fmt
        if dst_fmt in present:
            print(f"ours:     {label} (and its floors) ...", flush=True)
            command = ["ours", str(src), src_fmt, str(dst), dst_fmt, "no" if takes else "yes"]
            ours, floor_in, floor_out = timed_with_floors(label, command, src_fmt, dst)
            row["ours"] = ours
            if "error" not in ours:
                row["floor_s"] = floor_in["work_s"] + floor_out["work_s"]
                row["ours_over_floor"] = ours["work_s"] / row["floor_s"]
                if dst_fmt == "coco":
                    dumped = run_child_rusage(me, ["json_dump", str(dst)], args.timeout)
                    floors[f"{label}: serialise (json.dumps of the output)"] = dumped
                    row["serialise_floor_s"] = floor_in["work_s"] + dumped.get("work_s", math.nan)
                    row["ours_over_serialise_floor"] = ours["work_s"] / row["serialise_floor_s"]
            shutil.rmtree(dst, ignore_errors=True)
        if peer is not None and peer_fmt is not None:
            peer_src = str(src)
            peer_in = "coco_instances" if src_fmt == "coco" else "voc_detection"
            print(f"datumaro: {label} ...", flush=True)
            theirs = best(str(peer), ["peer", peer_src, peer_in, str(dst), peer_fmt], args.repeat, args.timeout, dst)
            row["datumaro"] = theirs
            shutil.rmtree(dst, ignore_errors=True)
            if "error" not in theirs and "error" not in row.get("ours", {"error": 1}):
                row["speedup_wall"] = theirs["wall_s"] / row["ours"]["wall_s"]
                row["speedup_work"] = theirs["work_s"] / row["ours"]["work_s"]
        rows.append(row)

    report(rows, floors, skipped, args)
    return 0


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[dict], floors: dict[str, dict], skipped: list[str], args: argparse.Namespace) -> None:
    head = (
        f"{'conversion':<30} {'ours s':>7} {'work':>6} {'cpu':>6} {'MiB':>5} {'datumaro s':>10} {'work':>6}"
        f" {'cpu':>6} {'MiB':>5} {'x faster':>8} {'floor s':>7} {'/floor':>6}"
    )
    load = (args.loadavg_start, os.getloadavg())
    print(f"\n{args.images} images, {args.boxes} boxes, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min) at start {load[0]}, at end {load[1]}: other load distorts every figure")
    print("s = child process wall time incl. imports; work = the conversion alone; cpu = user+sys of the child")
    print(head)
    print("-" * len(head))
    for row in rows:
        ours, theirs = row.get("ours", {}), row.get("datumaro", {})
        label = row["conversion"] + (" *" if row["copy_images"] and ours else "")
        print(
            f"{label:<30} {_fmt(ours.get('wall_s'), '7.2f')} {_fmt(ours.get('work_s'), '6.2f')}"
            f" {_fmt(ours.get('cpu_s'), '6.2f')} {_fmt(ours.get('peak_mib'), '5.0f')}"
            f" {_fmt(theirs.get('wall_s'), '10.2f')} {_fmt(theirs.get('work_s'), '6.2f')}"
            f" {_fmt(theirs.get('cpu_s'), '6.2f')} {_fmt(theirs.get('peak_mib'), '5.0f')}"
            f" {_fmt(row.get('speedup_wall'), '8.1f')} {_fmt(row.get('floor_s'), '7.2f')}"
            f" {_fmt(row.get('ours_over_floor'), '6.2f')}"
        )
        if "ours_over_serialise_floor" in row:
            print(
                f"    with json.dumps of the output as the output floor: floor {row['serialise_floor_s']:.2f} s,"
                f" ours / floor {row['ours_over_serialise_floor']:.2f}"
            )
        for side, result in (("ours", ours), ("datumaro", theirs)):
            if "error" in result:
                print(f"    {side} failed: {result['error']}")
    print("* the writer has no copy_images option: images placed (hard links) or embedded as it does by default")
    print("\nfloors:")
    for name, result in floors.items():
        detail = f"  {name:<36} {_fmt(result.get('work_s'), '.3f')} s  peak {_fmt(result.get('peak_mib'), '.0f')} MiB"
        print(detail + (f"  ({result['bytes']} bytes)" if "bytes" in result else ""))
    if skipped:
        print("skipped: " + "; ".join(skipped))
    print("targets: >= 3x faster than datumaro (wall), <= 1.5x the floor (work)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "images": args.images,
        "boxes": args.boxes,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "loadavg_start": args.loadavg_start,
        "loadavg_end": load[1],
        "rows": rows,
        "floors": floors,
        "skipped": skipped,
        "targets": {"speedup_wall_min": 3.0, "ours_over_floor_max": 1.5},
    }
    args.json.write_text(json.dumps(document, indent=2))
    print(f"results: {args.json}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](*sys.argv[3:])))
        sys.exit(0)
    sys.exit(main())
