"""``mcv dataset``: inspect, validate, convert and split datasets in any supported format.

Every subcommand reads the dataset through :func:`multicloud_cv.datasets.formats.read_dataset`
(format detected unless ``--format`` / ``--from``), never decodes pixels unless a check
needs them, and writes atomically. ``--json`` prints one document of the schemas
``dataset_report``, ``validation_report`` or ``conversion_report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from multicloud_cv.datasets.model import Dataset
    from multicloud_cv.datasets.preflight import Finding
    from multicloud_cv.schema import DatasetReport, FindingDoc

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
format_option = click.option(
    "--format",
    "-f",
    "fmt",
    default="auto",
    show_default=True,
    metavar="FORMAT",
    help="Dataset format (see `mcv dataset formats`); detected when auto.",
)


@click.group("dataset")
def dataset_group() -> None:
    """Inspect, validate, convert and split datasets (COCO, VOC, .lst, RecordIO, manifests, folders...)."""


@dataset_group.command("formats")
@json_option
def formats_cmd(as_json: bool) -> None:
    """The dataset formats mcv reads and writes, and the tasks each holds."""
    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.datasets.formats import FORMATS

    rows = [{"name": f.name, "tasks": list(f.tasks), "summary": f.summary} for f in FORMATS.values()]
    if as_json:
        emit_json({"formats": rows})
        return
    for row in rows:
        click.echo(f"{row['name']:<26} {','.join(row['tasks']):<38} {row['summary']}")


def _finding_doc(finding: Finding) -> FindingDoc:
    from multicloud_cv.schema import FindingDoc

    return FindingDoc(**finding.as_dict())


def _sizes(dataset: Dataset, read_headers: bool) -> tuple[int, int, int, int] | None:
    from concurrent.futures import ThreadPoolExecutor

    from multicloud_cv.datasets.media import image_size, is_uri
    from multicloud_cv.errors import DatasetError

    def one(image: Any) -> tuple[int, int] | None:
        if image.width and image.height:
            return int(image.width), int(image.height)
        if not read_headers or is_uri(image.path):
            return None
        try:
            return image_size(dataset, image)
        except DatasetError:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = [size for size in pool.map(one, dataset.images) if size]
    if not sizes:
        return None
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    return min(widths), max(widths), min(heights), max(heights)


def inspect_dataset(path: str, fmt: str = "auto", read_headers: bool = True) -> DatasetReport:
    """What the dataset at ``path`` holds, with the problems any provider would refuse."""
    from multicloud_cv.capabilities import Limits, Task
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.datasets.preflight import check_structure
    from multicloud_cv.schema import DatasetReport, SizeRange

    dataset = read_dataset(path, fmt)
    per_split_class = {
        split: dataset.label_counts(dataset.split(split))
        for split in ("train", "validation", "test")
        if dataset.split(split)
    }
    boxes: dict[str, int] = dict.fromkeys(dataset.classes, 0)
    for image in dataset.images:
        for box in image.boxes:
            if 0 <= box.label < len(dataset.classes):
                boxes[dataset.classes[box.label]] += 1
    sizes = _sizes(dataset, read_headers)
    split_file = next((n.partition(":")[2] for n in dataset.notes if n.startswith("split-file:")), None)
    problems = check_structure(dataset, Task(dataset.task), Limits(min_images_per_label=1, min_labels=1))
    return DatasetReport(
        path=str(dataset.root),
        format=dataset.source_format,
        task=dataset.task,  # type: ignore[arg-type]
        num_images=len(dataset.images),
        classes=list(dataset.classes),
        per_class=dataset.label_counts(),
        num_boxes=sum(len(image.boxes) for image in dataset.images),
        boxes_per_class=boxes if dataset.task == "detection" else {},
        splits=dataset.splits,
        per_split_class=per_split_class,
        image_sizes=SizeRange(min_width=sizes[0], max_width=sizes[1], min_height=sizes[2], max_height=sizes[3])
        if sizes
        else None,
        negatives=sum(1 for image in dataset.images if not image.boxes) if dataset.task == "detection" else 0,
        split_file=split_file,
        problems=[_finding_doc(f) for f in problems],
    )


@dataset_group.command("inspect")
@click.argument("path", type=click.Path(path_type=str))
@format_option
@click.option("--no-sizes", is_flag=True, help="Do not read image headers for sizes the annotations lack.")
@json_option
def inspect_cmd(path: str, fmt: str, no_sizes: bool, as_json: bool) -> None:
    """Images, classes, counts per class and split, boxes, image sizes and problems of a dataset."""
    from multicloud_cv.cli.output import emit_json

    report = inspect_dataset(path, fmt, read_headers=not no_sizes)
    if as_json:
        emit_json(report)
        return
    from multicloud_cv.cli.render import render_dataset_report

    render_dataset_report(report)


@dataset_group.command("validate")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--provider", "-p", default="local", show_default=True, help="Check against this provider's limits.")
@format_option
@click.option(
    "--task", type=click.Choice(["classification", "multilabel", "detection"]), default=None, help="Default: dataset's."
)
@click.option("--decode", is_flag=True, help="Also decode every image (finds truncated files; slower).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
@json_option
def validate_cmd(
    path: str, provider: str, fmt: str, task: str | None, decode: bool, options: tuple[str, ...], as_json: bool
) -> None:
    """Every preflight finding for training this dataset on PROVIDER. Exit 2 when any is an error."""
    import sys

    from multicloud_cv.capabilities import Task
    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.config import parse_overrides
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.datasets.preflight import Severity
    from multicloud_cv.interfaces import TrainingSpec
    from multicloud_cv.registry import registry
    from multicloud_cv.schema import ValidationReport

    trainer = registry().trainer(provider, overrides=parse_overrides(options))
    dataset = read_dataset(path, fmt)
    chosen = Task(task or dataset.task)
    findings = trainer.check(TrainingSpec(dataset=dataset, task=chosen), files=True, decode=decode)
    reason = trainer.capabilities.unsupported.get(chosen.feature)
    if reason is not None:  # the provider cannot train this task at all: say so first
        from multicloud_cv.datasets.preflight import Finding

        findings.insert(
            0,
            Finding(Severity.ERROR, "unsupported-task", f"provider '{provider}' cannot train {chosen.value}", reason),
        )
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    report = ValidationReport(
        path=str(dataset.root),
        format=dataset.source_format,
        provider=provider,
        task=chosen.value,
        ok=errors == 0,
        errors=errors,
        warnings=len(findings) - errors,
        findings=[_finding_doc(f) for f in findings],
    )
    if as_json:
        emit_json(report)
    else:
        for finding in findings:
            click.echo(f"{finding.severity.value}: {finding.line()}", err=finding.severity is Severity.ERROR)
        verdict = "ok" if errors == 0 else f"{errors} error(s)"
        click.echo(f"{dataset.root} for {provider}: {verdict}, {report.warnings} warning(s)")
    sys.exit(0 if errors == 0 else 2)


def _conversion(source: Dataset, src: str, dst: Path, fmt: str) -> Any:
    from multicloud_cv.schema import ConversionReport

    return ConversionReport(
        source=src,
        source_format=source.source_format,
        destination=str(dst),
        format=fmt,
        num_images=len(source.images),
        splits=source.splits,
    )


@dataset_group.command("convert")
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option("--to", "to_fmt", required=True, metavar="FORMAT", help="Output format.")
@click.option("--from", "from_fmt", default="auto", show_default=True, metavar="FORMAT", help="Input format.")
@click.option("--overwrite", is_flag=True, help="Replace DST when it exists.")
@json_option
def convert_cmd(src: str, dst: str, to_fmt: str, from_fmt: str, overwrite: bool, as_json: bool) -> None:
    """Convert SRC into DST in another format; DST is written whole or not at all."""
    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.datasets.formats import get_format, read_dataset, write_dataset

    get_format(to_fmt)
    dataset = read_dataset(src, from_fmt)
    target = write_dataset(dataset, dst, to_fmt, overwrite=overwrite)
    report = _conversion(dataset, src, target, to_fmt)
    if as_json:
        emit_json(report)
    else:
        click.echo(f"wrote {len(dataset.images)} images ({dataset.source_format} -> {to_fmt}) to {target}")


@dataset_group.command("split")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--val", "validation", type=float, default=0.1, show_default=True, help="Validation fraction.")
@click.option("--test", type=float, default=0.1, show_default=True, help="Test fraction.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resplit", is_flag=True, help="Reassign images that already have a split too.")
@format_option
@json_option
def split_cmd(path: str, validation: float, test: float, seed: int, resplit: bool, fmt: str, as_json: bool) -> None:
    """Store a stratified, seeded split beside the dataset; every command then uses it."""
    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.datasets.splitfile import make_split, write_split

    dataset = read_dataset(path, fmt, stored_split=False)
    split = make_split(dataset, validation, test, seed, resplit=resplit)
    target = write_split(split, Path(path).expanduser().resolve(), seed, validation, test)
    report = _conversion(split, path, target, "split")
    if as_json:
        emit_json(report)
    else:
        counts = ", ".join(f"{name} {count}" for name, count in sorted(split.splits.items()))
        click.echo(f"split {len(split.images)} images ({counts}); stored in {target}")


@dataset_group.command("stage")
@click.argument("path", type=click.Path(path_type=str))
@click.argument("dest_uri")
@format_option
@click.option("--workers", type=click.IntRange(min=1, max=256), default=16, show_default=True)
@json_option
def stage_cmd(path: str, dest_uri: str, fmt: str, workers: int, as_json: bool) -> None:
    """Upload a dataset's images to DEST_URI (s3://, gs://, az://, file://); files already there are skipped.

    Interrupted? Run it again: it lists the destination once and uploads only what is missing
    or changed. Endpoints follow the SDK conventions (AWS_ENDPOINT_URL_S3, STORAGE_EMULATOR_HOST).
    """
    from multicloud_cv.cli.output import count_progress, emit_json
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.schema import StageReport
    from multicloud_cv.staging import StageProgress, stage

    dataset = read_dataset(path, fmt)
    with count_progress(not as_json, f"staging to {dest_uri}") as update:

        def progress(state: StageProgress) -> None:
            update(state.files_done, state.files_total)

        result = stage(dataset, dest_uri, workers=workers, progress=progress)
    report = StageReport(
        source=str(dataset.root),
        destination=result.dest_uri,
        uploaded=result.uploaded,
        skipped=result.skipped,
        bytes=result.bytes,
        seconds=round(result.seconds, 3),
    )
    if as_json:
        emit_json(report)
    else:
        click.echo(
            f"staged {result.files} files to {result.dest_uri}: {result.uploaded} uploaded "
            f"({result.bytes / 1e6:.1f} MB), {result.skipped} already there, {result.seconds:.1f} s"
        )


@dataset_group.command("generate")
@click.argument("dst", type=click.Path(path_type=str))
@click.option("--to", "to_fmt", default="coco", show_default=True, metavar="FORMAT", help="Output format.")
@click.option("--images", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classes", default=None, help="Comma-separated Fashion-MNIST class names (default: five).")
@click.option("--size", default="320x240", show_default=True, help="Image width x height in pixels.")
@click.option("--max-objects", type=click.IntRange(min=1, max=50), default=4, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace DST when it exists.")
@json_option
def generate_cmd(
    dst: str,
    to_fmt: str,
    images: int,
    seed: int,
    classes: str | None,
    size: str,
    max_objects: int,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Make a real detection dataset offline: Fashion-MNIST items pasted on real photos, every box exact.

    Reproducible for a seed; train/validation/test splits 70/15/15 are kept in the output.
    """
    import re
    import shutil
    import tempfile

    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.datasets.formats import get_format, writable_destination, write_dataset
    from multicloud_cv.datasets.synthetic_detection import generate_detection_dataset
    from multicloud_cv.errors import DatasetError

    if "detection" not in get_format(to_fmt).tasks:
        raise DatasetError(f"format '{to_fmt}' does not hold detection datasets; try --to coco")
    match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", size)
    if not match:
        raise DatasetError(f"--size '{size}' is not WIDTHxHEIGHT, e.g. 320x240")
    target = writable_destination(dst, overwrite)  # checked before generating, not after
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.generate-", dir=target.parent))
    try:
        dataset = generate_detection_dataset(
            scratch,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            images=images,
            seed=seed,
            size=(int(match.group(1)), int(match.group(2))),
            max_objects=max_objects,
        )
        write_dataset(dataset, target, to_fmt, overwrite=overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = _conversion(dataset, "generated", target, to_fmt)
    if as_json:
        emit_json(report)
    else:
        boxes = sum(len(image.boxes) for image in dataset.images)
        click.echo(f"wrote {len(dataset.images)} images with {boxes} boxes ({', '.join(dataset.classes)}) to {target}")
