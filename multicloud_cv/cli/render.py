"""Human renderings of results (tables); JSON output does not come through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multicloud_cv.schema import DatasetReport, Evaluation


def render_evaluation(evaluation: Evaluation) -> None:
    """Summary line, per-label table and confusion matrix."""
    from rich.table import Table

    from multicloud_cv.cli.output import stdout_console

    console = stdout_console()
    head = f"{evaluation.task}: {evaluation.num_images} images"
    if evaluation.accuracy is not None:
        head += f"  accuracy {evaluation.accuracy:.4f}"
    if evaluation.macro_f1 is not None:
        head += f"  macro F1 {evaluation.macro_f1:.4f}"
    if evaluation.latency_ms_p50 is not None:
        head += f"  latency p50 {evaluation.latency_ms_p50:.1f} ms p95 {evaluation.latency_ms_p95 or 0:.1f} ms"
    if evaluation.emulated:
        head += "  (EMULATED)"
    console.print(head, highlight=False)
    table = Table(show_header=True)
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in evaluation.per_label:
        table.add_row(row.name, f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}", str(row.support))
    console.print(table)
    if evaluation.confusion:
        matrix = Table(title="confusion (rows: true, columns: predicted)", show_header=True)
        matrix.add_column("")
        for i in range(len(evaluation.labels)):
            matrix.add_column(str(i), justify="right")
        for i, counts in enumerate(evaluation.confusion):
            matrix.add_row(f"{i} {evaluation.labels[i]}", *[str(v) for v in counts])
        console.print(matrix)


def render_dataset_report(report: DatasetReport) -> None:
    """Summary lines, a per-class table with one column per split, and the problems found."""
    from rich.table import Table

    from multicloud_cv.cli.output import stdout_console

    console = stdout_console()
    console.print(f"[bold]{report.path}[/]  format {report.format}  task {report.task}", highlight=False)
    splits = ", ".join(f"{name} {count}" for name, count in sorted(report.splits.items()))
    line = f"{report.num_images} images ({splits}), {len(report.classes)} classes"
    if report.task == "detection":
        line += f", {report.num_boxes} boxes, {report.negatives} images without boxes"
    if report.image_sizes:
        s = report.image_sizes
        line += f", sizes {s.min_width}-{s.max_width} x {s.min_height}-{s.max_height} px"
    console.print(line, highlight=False)
    if report.split_file:
        console.print(f"split from {report.split_file}", highlight=False)
    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("images", justify="right")
    if report.task == "detection":
        table.add_column("boxes", justify="right")
    split_names = list(report.per_split_class)
    for name in split_names:
        table.add_column(name, justify="right")
    for index, name in enumerate(report.classes):
        row = [str(index), name, str(report.per_class.get(name, 0))]
        if report.task == "detection":
            row.append(str(report.boxes_per_class.get(name, 0)))
        row += [str(report.per_split_class[split].get(name, 0)) for split in split_names]
        table.add_row(*row)
    console.print(table)
    for problem in report.problems:
        where = f"{problem.path}: " if problem.path else ""
        console.print(f"{problem.severity}: {where}{problem.message}; {problem.fix}", highlight=False)
