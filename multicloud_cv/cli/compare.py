"""``mcv compare``: one dataset, several providers, one fair table (:mod:`multicloud_cv.compare`).

Output: a Markdown table on stdout (provider | state | accuracy or mAP@.5 | macro F1 | train time |
train cost | p50 latency | emulated), then one line per failed or refused provider with its reason;
progress lines on stderr. ``--json``: exactly one ``comparison`` document on stdout
(docs/schema/comparison.schema.json). ``--report FILE`` also writes the report as HTML (``.html``)
or Markdown (any other suffix).

Exit codes: 0 when at least one provider is ok and none failed (a refused provider was declined
before anything was sent and does not count as a failure); 1 when any provider failed; 2 for bad
input (unknown provider, dataset too small to split, a malformed ``provider.key=value``, every
provider refused...), raised before anything starts.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    from multicloud_cv.cli.main import parse_duration

    return None if value is None else parse_duration(value)


@click.command(name="compare")
@click.option(
    "--dataset",
    "-d",
    "dataset_path",
    required=True,
    type=click.Path(path_type=str),
    help="Dataset path in any supported format.",
)
@click.option("--format", "-f", "fmt", default="auto", show_default=True, help="Dataset format; detected when auto.")
@click.option("--providers", "-p", required=True, metavar="A,B,...", help="Providers to compare, comma-separated.")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Training epochs, the same for every provider."
)
@click.option(
    "--hp",
    "hyperparameters",
    multiple=True,
    metavar="PROVIDER.KEY=VALUE",
    help="A provider's own hyperparameter, e.g. --hp local.lr=0.01; repeatable.",
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="PROVIDER.KEY=VALUE",
    help="A provider setting, e.g. -o sagemaker.instance_type=ml.g4dn.xlarge; repeatable.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of each class held out for testing when the dataset has no test split.",
)
@click.option(
    "--val",
    "validation_fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Also assign a shared validation split (0: each provider carves its own from the training split).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the assigned split.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Confidence threshold for multi-label and detection scoring, the same for every provider.",
)
@click.option(
    "--timeout", type=str, default=None, callback=_duration, help="Give up waiting on a training job after this long."
)
@click.option("--keep", is_flag=True, help="Leave the endpoints running (delete later: mcv cleanup --run ID).")
@click.option("--retrain", is_flag=True, help="Train again even where an earlier run of this comparison succeeded.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None, help="Also write a report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def compare_cmd(
    dataset_path: str,
    fmt: str,
    providers: str,
    epochs: int | None,
    hyperparameters: tuple[str, ...],
    options: tuple[str, ...],
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    threshold: float,
    timeout: float | None,
    keep: bool,
    retrain: bool,
    report_path: Path | None,
    as_json: bool,
) -> None:
    """Train several providers on the same split of one dataset and score them with the same code.

    Every provider trains on the same training images and is scored by mcv's own evaluation on the
    same held-out test images, through its own endpoint; endpoints are deleted at the end unless
    --keep. Running the same comparison again reuses the models that already trained.
    """
    from multicloud_cv.compare import (
        compare,
        exit_code,
        parse_provider_pairs,
        parse_providers,
        report_html,
        report_markdown,
    )

    names = parse_providers(providers)
    if report_path is not None and report_path.suffix.lower() in (".html", ".htm"):
        from multicloud_cv.report import require_plotly

        require_plotly()  # refuse before any training, not after
    result = compare(
        dataset_path,
        names,
        fmt=fmt,
        epochs=epochs,
        hyperparameters=parse_provider_pairs(hyperparameters, names, "--hp"),
        settings=parse_provider_pairs(options, names, "-o"),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        threshold=threshold,
        keep=keep,
        retrain=retrain,
        train_timeout=timeout,
        on_event=None if as_json else _progress(names),
    )
    if report_path is not None:
        text = report_html(result) if report_path.suffix.lower() in (".html", ".htm") else report_markdown(result)
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(text, encoding="utf-8")
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(result)
    else:
        click.echo(report_markdown(result, details=False), nl=False)
        if report_path is not None:
            click.echo(f"report written to {report_path}")
    sys.exit(exit_code(result))


def _progress(names: list[str]) -> Any:
    """One stderr line per provider step: ``[local] training job-...: TRAINING epoch 2/5``."""
    from rich.markup import escape

    from multicloud_cv.cli.output import stderr_console

    console = stderr_console()
    width = max(len(name) for name in names)
    lock = threading.Lock()

    def show(provider: str, message: str) -> None:
        with lock:
            console.print(f"[bold]{escape(provider):<{width}}[/]  {escape(message)}", highlight=False)

    return show


def register(cli: click.Group) -> None:
    """Add ``mcv compare`` to the ``mcv`` group."""
    cli.add_command(compare_cmd)
