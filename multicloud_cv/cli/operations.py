"""``mcv cleanup``, ``mcv emulate``, ``mcv plan`` and ``mcv iam-policy``: commands around the jobs themselves."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from typing import Any

import click

EMULATORS = "multicloud_cv.emulators"


def _registry() -> Any:
    from multicloud_cv.registry import registry

    return registry()


@click.command()
@click.option("--run", "run_id", default=None, help="Delete the endpoints of this run.")
@click.option("--all", "everything", is_flag=True, help="Delete every live endpoint, expired or not.")
@click.option(
    "--models", is_flag=True, help="With --run or --all: also delete the jobs' models, datasets and projects."
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def cleanup(run_id: str | None, everything: bool, models: bool, dry_run: bool, as_json: bool) -> None:
    """Delete endpoints whose --ttl has passed (or a run's, or all), so nothing keeps billing."""
    from multicloud_cv.cleanup import cleanup as run_cleanup
    from multicloud_cv.errors import BadInput
    from multicloud_cv.runs import RunStore

    if models and run_id is None and not everything:
        raise BadInput("--models needs --run RUN or --all: say whose models to delete")
    registry = _registry()
    result = run_cleanup(
        RunStore(),
        registry.deployer,
        run_id=run_id,
        everything=everything,
        dry_run=dry_run,
        trainer_for=registry.trainer if models else None,
    )
    if as_json:
        document = {
            "deleted": result.deleted,
            "removed_jobs": result.removed_jobs,
            "failed": result.failed,
            "planned": result.planned,
        }
        click.echo(json.dumps(document))
    else:
        for endpoint_id in result.planned:
            click.echo(f"would delete {endpoint_id}")
        for endpoint_id in result.deleted:
            click.echo(f"deleted {endpoint_id}")
        for job_id in result.removed_jobs:
            click.echo(f"removed the resources of {job_id}")
        for endpoint_id, reason in result.failed.items():
            click.echo(f"could not delete {endpoint_id}: {reason}", err=True)
        if not (result.planned or result.deleted or result.failed or result.removed_jobs):
            click.echo("nothing to clean up")
    if result.failed:
        sys.exit(1)


def _emulator_class(provider: str) -> Any:
    from importlib.metadata import entry_points

    from multicloud_cv.errors import BadInput

    found = {ep.name: ep for ep in entry_points(group=EMULATORS)}
    if provider not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise BadInput(f"no emulator for provider '{provider}' (emulators: {known})")
    return found[provider].load()


@click.command()
@click.argument("provider")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: any).")
@click.option("--pace", type=float, default=2.0, show_default=True, help="Seconds per job state.")
@click.option("--bucket", default="mcv-emulated", show_default=True, help="Bucket to create at start.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help="Where trained models are kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the environment as one JSON object.")
def emulate(provider: str, port: int, pace: float, bucket: str, state_dir: str | None, as_json: bool) -> None:
    """Start PROVIDER's emulator on 127.0.0.1 and print the environment lines that point the SDK and mcv at it.

    Paste the lines into another shell (or `eval` them), then use `mcv ... --provider PROVIDER` as usual;
    runs made there are marked emulated. Ctrl-C (or SIGTERM) stops the emulator and everything it started.
    """
    cls = _emulator_class(provider)
    emulator = cls(port=port, pace=pace, state_dir=state_dir, bucket=bucket)
    emulator.start()
    try:
        environment = {**emulator.environment(), **getattr(emulator, "provider_settings", dict)()}
        if as_json:
            click.echo(json.dumps(environment))
        else:
            for key, value in environment.items():
                click.echo(f"export {key}={value}")
        sys.stdout.flush()
        click.echo(f"{provider} emulator running on 127.0.0.1; Ctrl-C stops it", err=True)
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            emulator.serve_forever()
    finally:
        emulator.stop()


def _interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM stops the emulator the way Ctrl-C does."""
    raise KeyboardInterrupt


@click.group()
def plan() -> None:
    """Print the native requests and the cost estimate of a command; nothing is sent."""


def _plan_train() -> click.Command:
    """``mcv plan train``: ``mcv train --dry-run`` under the name the design gives it."""
    from multicloud_cv.cli.main import train

    params = [p for p in train.params if p.name not in ("dry_run", "wait", "timeout")]

    def callback(**kwargs: Any) -> None:
        context = click.get_current_context()
        context.invoke(train, dry_run=True, wait=False, timeout=None, **kwargs)

    return click.Command("train", params=params, callback=callback, help="The requests `mcv train` would send.")


@click.command(name="iam-policy")
@click.option("--provider", "-p", required=True, help="The provider whose policy to print.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
def iam_policy(provider: str, options: tuple[str, ...]) -> None:
    """Print the least-privilege access policies a run on PROVIDER needs (JSON)."""
    from multicloud_cv.config import parse_overrides
    from multicloud_cv.errors import BadInput

    trainer = _registry().trainer(provider, overrides=parse_overrides(options))
    policies = trainer.access_policy()
    if policies is None:
        raise BadInput(f"provider '{provider}' needs no cloud access policy")
    click.echo(json.dumps(policies, indent=2))


@click.command()
@click.argument("model_id")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Labels per image or most boxes.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Confidence threshold.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def transform(
    model_id: str,
    images: tuple[str, ...],
    top_k: int | None,
    threshold: float | None,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Batch prediction without an endpoint (e.g. SageMaker batch transform): images or folders, one answer each."""
    from multicloud_cv.cli.main import print_predictions
    from multicloud_cv.config import parse_overrides
    from multicloud_cv.interfaces import expand_images
    from multicloud_cv.runs import RunStore
    from multicloud_cv.schema import PredictionList

    record = RunStore().model(model_id)
    predictor = _registry().predictor(record.provider, overrides=parse_overrides(options))
    paths = [p for image in images for p in expand_images(image)]
    results = predictor.transform(model_id, paths, top_k=top_k, threshold=threshold)
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(PredictionList(predictions=results))
    else:
        print_predictions(results)


def register(cli: click.Group) -> None:
    """Add these commands to the ``mcv`` group."""
    cli.add_command(transform)
    cli.add_command(cleanup)
    cli.add_command(emulate)
    plan.add_command(_plan_train())
    cli.add_command(plan)
    cli.add_command(iam_policy)
