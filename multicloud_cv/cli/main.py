"""``mcv``: train, deploy, predict and evaluate image models on any provider.

Exit codes: 0 success; 1 a job or a service failed (reason printed); 2 bad input or usage
(one clear line, nothing half-written). ``--json`` prints exactly one JSON document on
stdout that validates against ``docs/schema/``; progress and messages go to stderr.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from multicloud_cv import __version__

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``2d`` to seconds; anything else is a usage error."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"'{text}' is not a duration; write e.g. 30m, 1h or 3600s")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _duration_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def _fail(exc: BaseException, as_json: bool) -> NoReturn:
    from multicloud_cv.errors import MCVError

    code = exc.exit_code if isinstance(exc, MCVError) else 1
    message = str(exc) if isinstance(exc, MCVError) else f"{type(exc).__name__}: {exc}"
    if as_json:
        from multicloud_cv.cli.output import emit_json
        from multicloud_cv.schema import ErrorReport

        emit_json(ErrorReport(error=message, type=type(exc).__name__, exit_code=code))
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class McvGroup(click.Group):
    """Turns library errors into one line and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from multicloud_cv.errors import MCVError

        try:
            return super().invoke(ctx)
        except MCVError as exc:
            _fail(exc, "--json" in sys.argv)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=McvGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="mcv")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Train and serve image models on any cloud, or on this machine, with one set of commands.

    Providers are plugins (`mcv providers`); switch clouds with --provider.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _options(values: tuple[str, ...]) -> dict[str, str]:
    from multicloud_cv.config import parse_overrides

    return parse_overrides(values)


def _store() -> Any:
    from multicloud_cv.runs import RunStore

    return RunStore()


def _registry() -> Any:
    from multicloud_cv.registry import registry

    return registry()


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
set_option = click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Provider setting (beats mcv.toml and MCV_<PROVIDER>_<KEY>); repeatable.",
)


# -- providers ---------------------------------------------------------------------------------


@cli.command()
@json_option
def providers(as_json: bool) -> None:
    """Installed providers, their capabilities and settings, and whether they look usable."""
    from multicloud_cv.cli.providers import providers_report, render_providers

    report = providers_report(_registry())
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(report)
    else:
        render_providers(report)


# -- training ----------------------------------------------------------------------------------


@cli.command()
@click.option("--provider", "-p", default="local", show_default=True, help="Where to train.")
@click.option(
    "--dataset",
    "-d",
    "dataset_path",
    required=True,
    type=click.Path(path_type=str),
    help="Dataset path in any supported format (see `mcv dataset formats`).",
)
@click.option("--format", "-f", "fmt", default="auto", show_default=True, help="Dataset format; detected when auto.")
@click.option(
    "--task",
    type=click.Choice(["classification", "multilabel", "detection"]),
    default=None,
    help="What to train (default: from the dataset).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option(
    "--hp", "hyperparameters", multiple=True, metavar="KEY=VALUE", help="Provider hyperparameter; repeatable."
)
@click.option(
    "--compute", type=click.Choice(["cpu", "gpu", "tpu"]), default=None, help="Compute kind (default: the provider's)."
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the job to finish.")
@click.option(
    "--timeout", type=str, default=None, callback=_duration_option, help="Give up waiting after this long (e.g. 2h)."
)
@click.option(
    "--base-model", default=None, metavar="MODEL", help="Incremental training: start from this recorded model."
)
@click.option("--skip-invalid", is_flag=True, help="Leave unreadable images out with a warning instead of failing.")
@click.option("--dry-run", is_flag=True, help="Print the native request and check everything; send nothing.")
@set_option
@json_option
def train(
    provider: str,
    dataset_path: str,
    fmt: str,
    task: str | None,
    epochs: int | None,
    hyperparameters: tuple[str, ...],
    compute: str | None,
    wait: bool,
    timeout: float | None,
    base_model: str | None,
    skip_invalid: bool,
    dry_run: bool,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Train a model on a provider. Prints the job (and its model id when done)."""
    from multicloud_cv.capabilities import Task
    from multicloud_cv.cli.output import emit_json, job_progress, stderr_console
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.datasets.validate import verify_images
    from multicloud_cv.interfaces import TrainingSpec

    trainer = _registry().trainer(provider, overrides=_options(options))
    trainer.ensure_ready()
    dataset = read_dataset(dataset_path, fmt)
    chosen = Task(task or dataset.task)
    compute = compute or trainer.default_compute
    trainer.check_capabilities([chosen.feature, f"compute:{compute}"])
    dataset = verify_images(dataset, trainer.capabilities.limits, skip_invalid=skip_invalid)
    spec = TrainingSpec(
        dataset=dataset,
        task=chosen,
        epochs=epochs,
        hyperparameters=_options(hyperparameters),
        compute=compute,
        base_model=base_model,
    )
    from multicloud_cv.datasets.preflight import raise_for_errors

    raise_for_errors(trainer.check(spec, files=True))  # headers, limits and train/test duplicates, before any upload
    if dry_run:
        emit_json(trainer.plan(spec))
        return
    job = trainer.submit(spec)
    if not as_json:
        stderr_console().print(f"submitted [bold]{job.id}[/] on {provider}")
    if wait:
        with job_progress(not as_json, f"training {job.id}") as update:
            job = trainer.wait(job.id, timeout=timeout, on_update=update)
    _print_job(job, as_json)


def _print_job(job: Any, as_json: bool) -> None:
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(job)
        return
    line = f"{job.id}  {job.provider}  {job.state.value} ({job.native_state})"
    if job.progress:
        line += f"  {job.progress}"
    if job.model_id:
        line += f"  model: {job.model_id}"
    click.echo(line)
    if job.metrics:
        click.echo("  " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(job.metrics.items())))
    if job.failure_reason:
        click.echo(f"  reason: {job.failure_reason}")


def _trainer_for_job(job_id: str) -> Any:
    record = _store().job(job_id)
    return _registry().trainer(record.provider)


@cli.command()
@click.argument("job_id", required=False)
@json_option
def status(job_id: str | None, as_json: bool) -> None:
    """A job's state (from the provider, recorded); without JOB, every recorded job."""
    if job_id:
        _print_job(_trainer_for_job(job_id).status(job_id), as_json)
        return
    records = _store().jobs()
    if as_json:
        from multicloud_cv.cli.output import emit_json
        from multicloud_cv.interfaces import job_from_record
        from multicloud_cv.schema import JobList

        emit_json(JobList(jobs=[job_from_record(r) for r in records]))
        return
    for r in records:
        click.echo(f"{r.id}  {r.provider}  {r.state} ({r.native_state})  {r.model_id or ''}".rstrip())


@cli.command(name="wait")
@click.argument("job_id")
@click.option(
    "--timeout", type=str, default=None, callback=_duration_option, help="Give up after this long (e.g. 30m)."
)
@json_option
def wait_cmd(job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a job to finish; exit code 1 if it failed."""
    from multicloud_cv.cli.output import job_progress

    trainer = _trainer_for_job(job_id)
    with job_progress(not as_json, f"waiting for {job_id}") as update:
        job = trainer.wait(job_id, timeout=timeout, on_update=update)
    _print_job(job, as_json)


@cli.command()
@click.argument("job_id")
@json_option
def cancel(job_id: str, as_json: bool) -> None:
    """Stop a job (a finished job is left as it is)."""
    _print_job(_trainer_for_job(job_id).cancel(job_id), as_json)


@cli.command()
@click.argument("job_id")
@click.option("--wait/--no-wait", default=False, help="Wait for the resumed job to finish.")
@json_option
def resume(job_id: str, wait: bool, as_json: bool) -> None:
    """Continue an interrupted or cancelled job from its last checkpoint."""
    from multicloud_cv.cli.output import job_progress

    trainer = _trainer_for_job(job_id)
    job = trainer.resume(job_id)
    if wait:
        with job_progress(not as_json, f"training {job_id}") as update:
            job = trainer.wait(job_id, on_update=update)
    _print_job(job, as_json)


@cli.command()
@click.argument("job_id")
def logs(job_id: str) -> None:
    """A job's log lines so far."""
    for line in _trainer_for_job(job_id).logs(job_id):
        click.echo(line)


# -- endpoints ---------------------------------------------------------------------------------


def _print_endpoint(endpoint: Any, as_json: bool) -> None:
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(endpoint)
        return
    line = f"{endpoint.id}  {endpoint.provider}  {endpoint.state.value}  model: {endpoint.model_id}"
    if endpoint.url:
        line += f"  {endpoint.url}"
    if endpoint.expires_at:
        line += f"  expires {endpoint.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    click.echo(line)
    if endpoint.failure_reason:
        click.echo(f"  reason: {endpoint.failure_reason}")


@cli.command()
@click.argument("model_id")
@click.option(
    "--ttl",
    "ttl_s",
    type=str,
    default=None,
    callback=_duration_option,
    help="Delete the endpoint by itself after this long (e.g. 1h).",
)
@click.option(
    "--provider",
    "-p",
    default=None,
    help="Serve with another provider: `local` serves the model's ONNX export (see `mcv export`).",
)
@set_option
@json_option
def deploy(model_id: str, ttl_s: float | None, provider: str | None, options: tuple[str, ...], as_json: bool) -> None:
    """Serve a trained model behind an endpoint."""
    record = _store().model(model_id)
    deployer = _registry().deployer(provider or record.provider, overrides=_options(options))
    _print_endpoint(deployer.deploy(model_id, ttl_s=ttl_s), as_json)


@cli.command(name="export")
@click.argument("model_id")
@click.option(
    "--format",
    "-f",
    "fmt",
    required=True,
    metavar="FORMAT",
    help="onnx, tflite, coreml, tensorflow, savedmodel or docker (what the provider can export: `mcv providers`).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A new or empty folder to unpack into (default: the mcv data folder's exports/MODEL/FORMAT).",
)
@set_option
@json_option
def export_cmd(model_id: str, fmt: str, out: Path | None, options: tuple[str, ...], as_json: bool) -> None:
    """Export a trained model to a file format and unpack it here; an ONNX export can be served locally."""
    record = _store().model(model_id)
    trainer = _registry().trainer(record.provider, overrides=_options(options))
    result = trainer.export(model_id, fmt, out)
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(result)
        return
    click.echo(f"exported {result.model_id} ({result.provider}) as {result.format} to {result.path}")
    for name in result.files:
        click.echo(f"  {name}")
    if result.local_model_id:
        click.echo(f"  served locally as model {result.local_model_id}: mcv deploy {result.model_id} --provider local")


@cli.command()
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted endpoints.")
@json_option
def endpoints(include_deleted: bool, as_json: bool) -> None:
    """Recorded endpoints, their state refreshed from each provider."""
    from multicloud_cv.schema import EndpointList

    registry = _registry()
    found = []
    for name in sorted({r.provider for r in _store().endpoints(include_deleted=include_deleted)}):
        found += registry.deployer(name).endpoints(include_deleted=include_deleted)
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(EndpointList(endpoints=found))
        return
    if not found:
        click.echo("no endpoints")
    for endpoint in found:
        _print_endpoint(endpoint, False)


@cli.command()
@click.argument("endpoint_id")
@json_option
def undeploy(endpoint_id: str, as_json: bool) -> None:
    """Delete an endpoint (idempotent)."""
    record = _store().endpoint(endpoint_id)
    _print_endpoint(_registry().deployer(record.provider).undeploy(endpoint_id), as_json)


@cli.command()
@click.argument("endpoint_id")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help="Labels per image (single-label) or most boxes (detection).",
)
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=None, help="Confidence threshold (multi-label, detection)."
)
@json_option
def predict(
    endpoint_id: str, images: tuple[str, ...], top_k: int | None, threshold: float | None, as_json: bool
) -> None:
    """Predict images (files or folders) with an endpoint; answers in the shared schema."""
    from multicloud_cv.interfaces import expand_images
    from multicloud_cv.schema import PredictionList

    record = _store().endpoint(endpoint_id)
    predictor = _registry().predictor(record.provider)
    paths = [p for image in images for p in expand_images(image)]
    results = predictor.predict_batch(endpoint_id, paths, top_k=top_k, threshold=threshold)
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(PredictionList(predictions=results))
        return
    print_predictions(results)


def print_predictions(results: list[Any]) -> None:
    """Predictions for people: the top labels, or every box, per image."""
    for result in results:
        if result.task == "detection":
            boxes = [
                f"{d.name} {d.confidence:.3f} ["
                + ", ".join(f"{v:.3f}" for v in (b.x_min, b.y_min, b.x_max, b.y_max))
                + "]"
                for d in result.detections
                for b in (d.box,)
            ]
            click.echo(f"{result.image}: {len(boxes)} box(es)  [{result.latency_ms:.1f} ms]")
            for line in boxes:
                click.echo(f"  {line}")
            continue
        labels = ", ".join(f"{lab.name} {lab.confidence:.3f}" for lab in result.labels[:5]) or "(no label)"
        click.echo(f"{result.image}: {labels}  [{result.latency_ms:.1f} ms]")


@cli.command()
@click.argument("target")
@click.option("--dataset", "-d", "dataset_path", required=True, type=click.Path(path_type=str))
@click.option("--split", default="test", show_default=True, help="Which split to score (train, validation, test, all).")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Confidence threshold for multi-label.",
)
@json_option
def evaluate(target: str, dataset_path: str, split: str, threshold: float, as_json: bool) -> None:
    """Score a MODEL (served temporarily) or an ENDPOINT on a dataset split with the common metric code."""
    from multicloud_cv.cli.output import count_progress, emit_json
    from multicloud_cv.cli.render import render_evaluation
    from multicloud_cv.datasets import load_dataset
    from multicloud_cv.errors import NotFound
    from multicloud_cv.evaluation import evaluate_endpoint

    store = _store()
    dataset = load_dataset(dataset_path)
    registry = _registry()
    temporary = None
    try:
        endpoint = store.endpoint(target)
    except NotFound:
        try:
            model = store.model(target)
        except NotFound:
            raise NotFound(
                f"no model or endpoint '{target}' in the run records; see `mcv status` and `mcv endpoints`"
            ) from None
        temporary = registry.deployer(model.provider).deploy(model.id)
        endpoint = store.endpoint(temporary.id)
    try:
        with count_progress(not as_json, "evaluating") as update:
            result = evaluate_endpoint(
                registry.predictor(endpoint.provider),
                endpoint.id,
                dataset,
                split=split,
                threshold=threshold,
                on_progress=update,
            )
    finally:
        if temporary is not None:
            registry.deployer(temporary.provider).undeploy(temporary.id)
    if as_json:
        emit_json(result)
    else:
        render_evaluation(result)


# -- demo --------------------------------------------------------------------------------------


@cli.command()
@click.option("--epochs", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--train-per-class", type=click.IntRange(min=2), default=500, show_default=True)
@click.option("--test-per-class", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
def demo(epochs: int, train_per_class: int, test_per_class: int, as_json: bool) -> None:
    """The whole path on the local provider and real bundled data: train, deploy, predict, evaluate, undeploy."""
    from multicloud_cv.cli.output import emit_json
    from multicloud_cv.cli.render import render_evaluation
    from multicloud_cv.demo import run_demo

    result = run_demo(
        epochs=epochs, train_per_class=train_per_class, test_per_class=test_per_class, show_progress=not as_json
    )
    if as_json:
        emit_json(result)
        return
    click.echo("predictions on held-out images:")
    for p in result.predictions:
        top = p.labels[0] if p.labels else None
        click.echo(
            f"  {p.image}: {top.name if top else '-'} {top.confidence if top else 0:.3f}  [{p.latency_ms:.1f} ms]"
        )
    render_evaluation(result.evaluation)


def _register_groups() -> None:
    from multicloud_cv.cli import compare, cost, operations
    from multicloud_cv.cli.dataset import dataset_group

    cli.add_command(dataset_group)
    operations.register(cli)
    compare.register(cli)
    cost.register(cli)


_register_groups()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mcv")


if __name__ == "__main__":
    main()
