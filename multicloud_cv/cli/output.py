"""Console output: human text and tables on stdout, progress and errors on stderr, one JSON document with --json.

Library code never prints; only the CLI writes, through these helpers.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console


def stdout_console() -> Console:
    """A rich console on stdout."""
    from rich.console import Console

    return Console(soft_wrap=True)


def stderr_console() -> Console:
    """A rich console on stderr (progress, warnings, errors)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def emit_json(document: BaseModel | dict[str, Any]) -> None:
    """Print exactly one JSON document on stdout."""
    if hasattr(document, "model_dump_json"):
        text = document.model_dump_json(indent=2, exclude_none=False)
    else:
        text = json.dumps(document, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


_EPOCH = re.compile(r"epoch (\d+)/(\d+)")


@contextmanager
def job_progress(enabled: bool, label: str) -> Iterator[Callable[[Any], None]]:
    """A progress bar for waiting on a job: epochs when the provider reports them, else the service's words."""
    if not enabled:
        yield lambda _job: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None, status="")

        def update(job: Any) -> None:
            match = _EPOCH.search(job.progress or "")
            status = f"{job.native_state or job.state.value} {job.progress or ''}".strip()
            acc = job.metrics.get("val_accuracy")
            if acc is not None:
                status += f" val_acc={acc:.3f}"
            if match:
                done, total = int(match.group(1)), int(match.group(2))
                progress.update(
                    task, total=total, completed=done if job.state.is_terminal() else done - 1, status=status
                )
            else:
                progress.update(task, status=status)
            if job.state.is_terminal():
                current = progress.tasks[0]
                progress.update(task, completed=current.total or 1, total=current.total or 1)

        yield update


@contextmanager
def count_progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over a known number of items (images predicted, files written)."""
    if not enabled:
        yield lambda _done, _total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
