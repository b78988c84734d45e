"""Human renderings of results (tables); JSON output does not come through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multicloud_cv.schema import Evaluation


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
