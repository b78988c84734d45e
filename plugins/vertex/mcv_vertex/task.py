"""The training program a Vertex AI CustomJob runs: ``python -m mcv_vertex.task``.

Shipped as the Python package :mod:`mcv_vertex.package` builds and run by a prebuilt PyTorch training
container (``python_package_spec``: ``python_module = "mcv_vertex.task"``)::

    python -m mcv_vertex.task --dataset gs://B/P/datasets/F/dataset.jsonl --task classification|multilabel|detection
        [--epochs N] [--image-size S] [--batch-size B] [--hp key=value ...]

Contract:

* Environment: ``AIP_MODEL_DIR`` (where the model goes: ``gs://...`` or a local folder; Vertex sets it to
  ``{base_output_dir}/model/``), optionally ``STORAGE_EMULATOR_HOST`` (google-cloud-storage honours it),
  ``CLOUD_ML_PROJECT_ID``, ``CLOUD_ML_JOB_ID`` (the model id written into the ONNX metadata; default: the name of
  the folder above ``AIP_MODEL_DIR``), ``CLUSTER_SPEC`` / ``TF_CONFIG`` on distributed jobs, and the caps
  ``MCV_TASK_MAX_EPOCHS`` / ``MCV_TASK_MAX_IMAGE_SIZE`` (an emulator sets them so its tests train in seconds; with
  the image-size cap and no ``--image-size`` the native size is used when smaller than the cap).
* Distributed jobs: the local engine is single-node. Only the chief (``workerpool0`` index 0 in ``CLUSTER_SPEC``,
  ``chief``/``master`` - or ``worker`` 0 of a cluster without one - in ``TF_CONFIG``) trains and writes the model;
  every other replica logs one line and exits 0 without training or writing anything.
* The chief downloads the JSON Lines file (Vertex import format, :mod:`multicloud_cv.datasets.vertex_jsonl`), the
  ``classes.txt`` beside it when there is one, and every image it names into a temporary folder, reads them with
  :func:`~multicloud_cv.datasets.vertex_jsonl.read_vertex_jsonl` and trains with the local provider's engine as
  ``mcv train --provider local`` does (same splits: ``training`` and unassigned images train, ``validation``
  validates, ``test`` is left out; same hyperparameters, checked by
  :func:`mcv_local.provider.parse_hyperparameters`): classification/multilabel with
  :func:`mcv_local.engine.train.train`, detection with the FCOS detector
  (:func:`mcv_local.engine.detection.train_detector` and :func:`~mcv_local.engine.detection_export.export_detector`;
  when the offline ImageNet backbone package is not installed and ``--hp pretrained=...`` is not given, the detector
  trains from scratch with a warning instead of failing).
* The export folder (``model.onnx`` with its metadata, ``labels.json``, ``metrics.json``, ``mcv_model.json``
  describing task/labels/model id; no checkpoints) is uploaded to ``AIP_MODEL_DIR``.
* Exit status 0 on success; on failure 1, and the LAST line written to stderr is ``mcv_vertex.task failed: <what>``
  (one line; the traceback, when there is one, is logged before it). Usage errors exit 2 (argparse).

Logs go to stderr (Vertex collects both streams into Cloud Logging).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicloud_cv.errors import BadInput, DatasetError, MCVError, NotFound, ServiceError

log = logging.getLogger("mcv_vertex.task")

TASKS = ("classification", "multilabel", "detection")
MODEL_DIR_ENV = "AIP_MODEL_DIR"
MAX_EPOCHS_ENV = "MCV_TASK_MAX_EPOCHS"
MAX_IMAGE_SIZE_ENV = "MCV_TASK_MAX_IMAGE_SIZE"
FAILURE_PREFIX = "mcv_vertex.task failed: "
#: What is uploaded from the export folder (the local provider's ``mcv export`` set: no ``.pt`` checkpoints).
EXPORTED_SUFFIXES = (".onnx", ".json", ".txt", ".manifest")
MODEL_INFO_FILE = "mcv_model.json"
DOWNLOAD_THREADS = 8
DEFAULT_EPOCHS = 10
"""The local engine's default number of epochs (classification and detection)."""


# ------------------------------------------------------------------------------------------- Cloud Storage


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``; :class:`BadInput` for anything else."""
    if not uri.startswith("gs://"):
        raise BadInput(f"{uri!r} is not a gs:// URI")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise BadInput(f"{uri!r} names no bucket")
    return bucket, name


_CLIENT: dict[tuple[int, str | None], Any] = {}


def storage_client() -> Any:
    """A google-cloud-storage client (one per process and emulator host): anonymous against
    ``STORAGE_EMULATOR_HOST``, else the container's default credentials and ``CLOUD_ML_PROJECT_ID``."""
    from google.cloud import storage  # type: ignore[attr-defined]

    key = (os.getpid(), os.environ.get("STORAGE_EMULATOR_HOST"))
    if key not in _CLIENT:
        project = os.environ.get("CLOUD_ML_PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        _CLIENT[key] = storage.Client(project=project) if project else storage.Client()
    return _CLIENT[key]


def _storage_error(uri: str, exc: Exception) -> MCVError:
    from google.api_core import exceptions

    if isinstance(exc, exceptions.NotFound):
        return NotFound(f"{uri} does not exist")
    if isinstance(exc, exceptions.Forbidden):
        return ServiceError(f"no permission to read or write {uri}: {exc}")
    return ServiceError(f"Cloud Storage failed on {uri}: {exc}")


def download_uri(uri: str, path: Path) -> Path:
    """Copy one object (``gs://``) or local file to ``path``; :class:`NotFound` when it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not uri.startswith("gs://"):
        source = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not source.is_file():
            raise NotFound(f"{uri} does not exist")
        shutil.copyfile(source, path)
        return path
    bucket, name = split_gs_uri(uri)
    if not name or name.endswith("/"):
        raise BadInput(f"{uri} names a folder, not an object")
    try:
        storage_client().bucket(bucket).blob(name).download_to_filename(str(path))
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise _storage_error(uri, exc) from exc
    return path


def read_uri(uri: str, client: Any = None) -> bytes:
    """The bytes of one object (``gs://``, read with ``client``, default :func:`storage_client`) or local file."""
    if not uri.startswith("gs://"):
        source = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not source.is_file():
            raise NotFound(f"{uri} does not exist")
        return source.read_bytes()
    bucket, name = split_gs_uri(uri)
    try:
        data: bytes = (client or storage_client()).bucket(bucket).blob(name).download_as_bytes()
    except Exception as exc:
        raise _storage_error(uri, exc) from exc
    return data


def exists_uri(uri: str) -> bool:
    """Whether an object (``gs://``) or local file exists."""
    if not uri.startswith("gs://"):
        return Path(uri).is_file()
    bucket, name = split_gs_uri(uri)
    try:
        return bool(storage_client().bucket(bucket).blob(name).exists())
    except Exception as exc:
        raise _storage_error(uri, exc) from exc


def download_folder(uri: str, dest: Path, client: Any = None) -> Path:
    """Copy every object under the ``gs://`` prefix ``uri`` (read with ``client``, default :func:`storage_client`;
    or a local folder) into ``dest``, keeping relative paths; object names that would leave ``dest`` (``..``) are
    skipped; :class:`NotFound` when there is nothing there."""
    dest.mkdir(parents=True, exist_ok=True)
    if not uri.startswith("gs://"):
        source = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not source.is_dir():
            raise NotFound(f"{uri} is not a folder")
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return dest
    bucket, prefix = split_gs_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        blobs = [
            blob
            for blob in (client or storage_client()).list_blobs(bucket, prefix=prefix)
            if not blob.name.endswith("/") and ".." not in Path(blob.name[len(prefix) :]).parts
        ]
        for blob in blobs:
            target = dest / blob.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(target))
    except MCVError:
        raise
    except Exception as exc:
        raise _storage_error(uri, exc) from exc
    if not blobs:
        raise NotFound(f"{uri} holds no objects")
    return dest


def upload_folder(folder: Path, uri: str, names: Sequence[str] | None = None) -> list[str]:
    """Copy the files ``names`` of ``folder`` (default: every file directly in it) to the ``gs://`` prefix or local
    folder ``uri``; returns the destination URIs, sorted."""
    files = sorted(folder / name for name in names) if names is not None else sorted(folder.iterdir())
    files = [path for path in files if path.is_file()]
    written: list[str] = []
    if not uri.startswith("gs://"):
        target = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        target.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, target / path.name)
            written.append(str(target / path.name))
        return written
    bucket_name, prefix = split_gs_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    bucket = storage_client().bucket(bucket_name)
    for path in files:
        destination = f"gs://{bucket_name}/{prefix}{path.name}"
        try:
            bucket.blob(prefix + path.name).upload_from_filename(str(path))
        except Exception as exc:
            raise _storage_error(destination, exc) from exc
        written.append(destination)
    return written


# ---------------------------------------------------------------------------------------------- arguments


@dataclass
class TaskArgs:
    """The parsed command line."""

    dataset: str
    task: str
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mcv_vertex.task``."""
    parser = argparse.ArgumentParser(
        prog="python -m mcv_vertex.task",
        description="Train the multicloud-cv local engine on a Vertex import JSON Lines file; the model goes to "
        "$AIP_MODEL_DIR.",
    )
    parser.add_argument("--dataset", required=True, help="gs:// URI (or local path) of dataset.jsonl")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--epochs", type=_positive)
    parser.add_argument("--image-size", type=_positive, dest="image_size")
    parser.add_argument("--batch-size", type=_positive, dest="batch_size")
    parser.add_argument(
        "--hp", type=_key_value, action="append", default=[], metavar="KEY=VALUE", help="a hyperparameter"
    )
    return parser


def parse_args(argv: Sequence[str]) -> TaskArgs:
    """Parse the command line (argparse exits 2 on a usage error)."""
    ns = build_parser().parse_args(list(argv))
    return TaskArgs(
        dataset=ns.dataset,
        task=ns.task,
        epochs=ns.epochs,
        image_size=ns.image_size,
        batch_size=ns.batch_size,
        hyperparameters=dict(ns.hp),
    )


def _cap(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"environment variable {name}={raw!r} is not an integer") from None
    if value < 1:
        raise BadInput(f"environment variable {name}={raw!r} must be at least 1")
    return value


# ----------------------------------------------------------------------------------------------- replicas


def replica_role(env: Mapping[str, str]) -> tuple[bool, str]:
    """``(is_chief, description)`` from ``CLUSTER_SPEC`` (Vertex) or ``TF_CONFIG``; no spec means a single replica,
    the chief. An unreadable spec is logged and treated as the chief."""
    for name in ("CLUSTER_SPEC", "TF_CONFIG"):
        raw = env.get(name)
        if not raw:
            continue
        try:
            spec = json.loads(raw)
            task = spec.get("task") or {}
            kind = str(task.get("type", ""))
            index = int(task.get("index", 0))
            cluster = spec.get("cluster") or {}
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("cannot read %s (%s); acting as the chief", name, exc)
            return True, "single replica"
        where = f"{kind or '?'} index {index}"
        if kind in ("workerpool0", "chief", "master"):
            return index == 0, where
        if kind == "worker" and not ({"chief", "master"} & set(cluster)):
            return index == 0, where
        return False, where
    return True, "single replica"


# ----------------------------------------------------------------------------------------------- the data


def _parent_uri(uri: str) -> str:
    return uri.rsplit("/", 1)[0] if "/" in uri else "."


def _local_image_path(images: Path, uri: str) -> Path:
    bucket, name = split_gs_uri(uri)
    parts = [part for part in name.split("/") if part not in ("", ".", "..")]
    if not parts:
        raise DatasetError(f"{uri} names no image object")
    return images.joinpath(bucket, *parts)


def stage_dataset(dataset_uri: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """Download the JSON Lines file, its ``classes.txt`` and every ``gs://`` image it names under ``workdir``, and
    write ``workdir/data/dataset.jsonl`` naming the local copies. Returns that file and a map of local path ->
    original reference (for error messages)."""
    data = workdir / "data"
    images = workdir / "images"
    data.mkdir(parents=True, exist_ok=True)
    if not dataset_uri.endswith(".jsonl") and not dataset_uri.endswith(".json"):
        log.warning("dataset %s does not end in .jsonl; reading it as JSON Lines anyway", dataset_uri)
    try:
        text = read_uri(dataset_uri).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{dataset_uri} is not UTF-8 text: {exc}") from None
    except NotFound:
        raise NotFound(f"dataset {dataset_uri} does not exist") from None
    base = _parent_uri(dataset_uri)
    classes_uri = f"{base}/classes.txt"
    if exists_uri(classes_uri):
        download_uri(classes_uri, data / "classes.txt")
    lines: list[str] = []
    wanted: dict[str, Path] = {}
    originals: dict[str, str] = {}
    for raw in text.splitlines():
        try:
            obj = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            obj = None  # kept as it is: the reader names the line and the problem
        if isinstance(obj, dict) and isinstance(obj.get("imageGcsUri"), str):
            ref = obj["imageGcsUri"].strip()
            if dataset_uri.startswith("gs://") and not ref.startswith(("gs://", "file://", "/")):
                ref = f"{base}/{ref}"  # relative to the JSON Lines file, as the reader resolves local ones
            if ref.startswith("gs://"):
                local = _local_image_path(images, ref)
                wanted[ref] = local
                originals[str(local)] = ref
                obj["imageGcsUri"] = str(local)
            elif not dataset_uri.startswith("gs://") and not ref.startswith(("file://", "/")):
                obj["imageGcsUri"] = str(Path(dataset_uri).resolve().parent / ref)
            lines.append(json.dumps(obj, ensure_ascii=False))
        else:
            lines.append(raw)
    log.info("dataset %s: %d lines, %d images to download", dataset_uri, len(lines), len(wanted))
    started = time.monotonic()

    def fetch(item: tuple[str, Path]) -> None:
        uri, path = item
        try:
            download_uri(uri, path)
        except NotFound:
            raise DatasetError(f"image {uri} named in {dataset_uri} does not exist") from None

    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        for _ in pool.map(fetch, sorted(wanted.items())):
            pass
    log.info("downloaded %d images in %.1f s", len(wanted), time.monotonic() - started)
    local = data / "dataset.jsonl"
    local.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return local, originals


def read_dataset(local_jsonl: Path, dataset_uri: str, originals: Mapping[str, str]) -> Any:
    """Read the staged file; :class:`DatasetError` messages name the original URIs, not the temporary copies."""
    from multicloud_cv.datasets.vertex_jsonl import read_vertex_jsonl

    try:
        return read_vertex_jsonl(local_jsonl)
    except DatasetError as exc:
        message = str(exc).replace(str(local_jsonl), dataset_uri)
        for path, uri in originals.items():
            message = message.replace(path, uri)
        raise DatasetError(message) from None


# ----------------------------------------------------------------------------------------------- training


def _median_size(paths: Sequence[str], limit: int = 200) -> tuple[int, int]:
    from PIL import Image

    widths, heights = [], []
    for path in paths[:limit]:
        with Image.open(path) as image:
            widths.append(image.width)
            heights.append(image.height)
    if not widths:
        raise DatasetError("no training images")
    return int(statistics.median(widths)), int(statistics.median(heights))


def engine_config(args: TaskArgs, dataset: Any, env: Mapping[str, str]) -> dict[str, Any]:
    """The local worker's training config for this dataset, as ``LocalTrainer`` builds it, with the command line's
    epochs / image size / batch size / hyperparameters and the environment's caps applied."""
    from mcv_local.provider import parse_hyperparameters

    task = args.task
    if dataset.task != task and not (task == "multilabel" and dataset.task == "classification"):
        raise DatasetError(f"{args.dataset} holds a {dataset.task} dataset but --task is {task}")
    hp = parse_hyperparameters(dict(args.hyperparameters), task)
    if args.batch_size is not None:
        hp["batch_size"] = args.batch_size
    image_size = args.image_size if args.image_size is not None else hp.pop("image_size", None)
    hp.pop("image_size", None)
    train = [img for img in dataset.images if img.split in (None, "train")]
    val = dataset.split("validation")
    if not train:
        raise DatasetError(f"{args.dataset} has no training images (ml_use training or unassigned)")

    def row(img: Any) -> Any:
        if task == "detection":
            boxes = [[b.label, b.x_min, b.y_min, b.x_max, b.y_max] for b in img.boxes]
            return (str(dataset.absolute(img)), boxes, img.width, img.height)
        return (str(dataset.absolute(img)), list(img.labels))

    epochs = args.epochs or DEFAULT_EPOCHS
    max_epochs = _cap(env, MAX_EPOCHS_ENV)
    if max_epochs is not None and epochs > max_epochs:
        log.info("%s=%d caps the %d epochs asked", MAX_EPOCHS_ENV, max_epochs, epochs)
        epochs = max_epochs
    config: dict[str, Any] = {
        "task": task,
        "classes": list(dataset.classes),
        "train": [row(img) for img in train],
        "val": [row(img) for img in val],
        "epochs": epochs,
        **hp,
    }
    if task == "detection" and "pretrained" not in hp:
        problem = _pretrained_detector_problem()
        if problem is not None:
            log.warning("training the detector from scratch: %s (install it, or pass --hp pretrained=false)", problem)
            config["pretrained"] = False
    max_size = _cap(env, MAX_IMAGE_SIZE_ENV)
    paths = [str(dataset.absolute(img)) for img in train]
    if task == "detection":
        if image_size is not None:
            config["image_size"] = [image_size, image_size]
        if max_size is not None:
            width, height = config.get("image_size") or _median_size(paths)
            scale = min(1.0, max_size / max(width, height))
            config["image_size"] = [max(16, math.floor(width * scale)), max(16, math.floor(height * scale))]
    else:
        if max_size is not None:
            if image_size is None:
                native = max(8, 4 * math.ceil(max(_median_size(paths)) / 4))
                image_size = min(native, max_size)
            image_size = min(image_size, max_size)
        if image_size is not None:
            config["image_size"] = image_size
    return config


def _pretrained_detector_problem() -> str | None:
    """Why the detector's offline ImageNet backbone cannot be loaded here (``None`` when it can)."""
    from mcv_local.engine.detection import weights_path
    from mcv_local.engine.errors import EngineError

    try:
        weights_path()
    except EngineError as exc:
        return str(exc)
    return None


def train_model(config: dict[str, Any], out: Path, model_id: str) -> dict[str, Any]:
    """Train and export into ``out`` with the local engine; returns the metrics. Writes ``labels.json`` and
    ``metrics.json`` for detection too, and :data:`MODEL_INFO_FILE` for both."""
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any]
    if config["task"] == "detection":
        from mcv_local.engine.detection import train_detector
        from mcv_local.engine.detection_export import export_detector
        from mcv_local.worker import detection_config, detection_dataset

        detection = detection_config(config)
        if config.get("image_size"):
            from dataclasses import replace

            width, height = config["image_size"]
            detection = replace(detection, image_size=(int(width), int(height)))
        detection = _no_resume(detection)

        def on_progress(event: dict[str, Any]) -> None:
            if event.get("event") == "step":
                log.info("step %s/%s loss=%s", event.get("step"), event.get("total"), event.get("loss"))

        result = train_detector(detection_dataset(config), detection, out, on_progress=on_progress)
        export_detector(result.model, out / "model.onnx", result.classes, result.image_size, model_id=model_id)
        metrics = {"final_loss": result.final_loss, "steps": result.steps_run, "seconds": result.train_seconds}
        if result.val_loss is not None:
            metrics["val_loss"] = result.val_loss
        (out / "labels.json").write_text(json.dumps(list(result.classes), indent=1) + "\n", encoding="utf-8")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
        image_size: Any = list(result.image_size)
    else:
        from mcv_local.engine.config import TrainConfig
        from mcv_local.engine.train import train

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "epoch_end":
                values = {k: v for k, v in event.items() if k not in ("event", "epoch", "epochs")}
                log.info("epoch %s/%s %s", event.get("epoch"), event.get("epochs"), values)

        cfg = TrainConfig.from_dict(dict(config))
        trained = train(cfg, out, on_event=on_event, resume=False, model_id=model_id)
        metrics = {k: v for k, v in trained.metrics.items() if isinstance(v, int | float | str)}
        image_size = trained.metrics.get("image_size")
    info = {
        "task": config["task"],
        "labels": list(config["classes"]),
        "model_id": model_id,
        "format": "onnx",
        "image_size": image_size,
        "trainer": "mcv_vertex.task (multicloud-cv local engine)",
    }
    (out / MODEL_INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return metrics


def _no_resume(config: Any) -> Any:
    from dataclasses import replace

    return replace(config, resume=False)


def model_id_for(env: Mapping[str, str], model_dir: str) -> str:
    """``CLOUD_ML_JOB_ID``, else the folder above ``AIP_MODEL_DIR`` (``.../jobs/{job_id}/model/``), else ``vertex``."""
    if env.get("CLOUD_ML_JOB_ID"):
        return env["CLOUD_ML_JOB_ID"]
    parts = [part for part in model_dir.rstrip("/").split("/") if part]
    if len(parts) >= 2 and parts[-1] == "model":
        return parts[-2]
    return "vertex"


def run(args: TaskArgs, env: Mapping[str, str], workdir: Path) -> list[str]:
    """Stage, train, export and upload (the chief's work); returns the uploaded URIs or paths."""
    model_dir = env.get(MODEL_DIR_ENV, "").strip()
    if not model_dir:
        raise BadInput(f"{MODEL_DIR_ENV} is not set: Vertex sets it from the job's base_output_dir")
    if model_dir.startswith("gs://"):
        split_gs_uri(model_dir)
    local_jsonl, originals = stage_dataset(args.dataset, workdir)
    dataset = read_dataset(local_jsonl, args.dataset, originals)
    log.info(
        "%s dataset: %d images, %d classes (%s)",
        dataset.task,
        len(dataset.images),
        len(dataset.classes),
        ", ".join(dataset.classes[:10]),
    )
    config = engine_config(args, dataset, env)
    log.info(
        "training %s: %d train / %d validation images, epochs=%s%s",
        args.task,
        len(config["train"]),
        len(config["val"]),
        config["epochs"],
        f", image_size={config['image_size']}" if "image_size" in config else "",
    )
    out = workdir / "model"
    metrics = train_model(config, out, model_id_for(env, model_dir))
    log.info("metrics: %s", metrics)
    names = sorted(p.name for p in out.iterdir() if p.is_file() and p.suffix in EXPORTED_SUFFIXES)
    uploaded = upload_folder(out, model_dir, names)
    log.info("uploaded %s to %s", ", ".join(names), model_dir)
    return uploaded


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, MCVError):
        text = f"{type(exc).__name__}: {text}"
    return text


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the task; returns the exit status (see the module docstring)."""
    environ = dict(os.environ if env is None else env)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    chief, where = replica_role(environ)
    if not chief:
        log.info(
            "replica %s is not the chief: the multicloud-cv engine trains on one node, so this replica trains "
            "nothing and writes nothing",
            where,
        )
        return 0
    failure: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="mcv-vertex-task-") as tmp:
        try:
            run(args, environ, Path(tmp))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the task's last word: one line naming the problem
            failure = exc
            if not isinstance(exc, MCVError) or isinstance(exc, ServiceError):
                log.error("training failed:\n%s", traceback.format_exc())
            else:
                log.debug("training failed:\n%s", traceback.format_exc())
    if failure is not None:
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.write(FAILURE_PREFIX + _one_line(failure) + "\n")
        sys.stderr.flush()
        return 1
    log.info("done")
    return 0


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )


def entry(argv: Sequence[str] | None = None) -> None:
    """Console entry: configure logging, run :func:`main` and exit with its status."""
    _configure_logging()
    raise SystemExit(main(argv))


if __name__ == "__main__":
    entry()
