"""``mcv cost estimate``: what a planned run would cost, before anything is sent (:mod:`multicloud_cv.cost`).

Contract: reads the dataset, builds the training spec the way ``mcv train`` does and asks the provider's
trainer for its plan (:meth:`multicloud_cv.interfaces.Trainer.plan`: the same checks as a submission, nothing
sent, nothing recorded); adds the hosting price per hour of the provider's deployer from its settings when the
price table knows it, and the prediction price per 1,000 images where the service bills per request. Output: a
small table, or with ``--json`` one document ``{provider, dataset, task, train_images, epochs, training_usd,
hosting_per_hour_usd, prediction_per_1000_usd, notes}`` (``null``: no price known). Every figure is an on-demand
list-price estimate from ``multicloud_cv/data/prices.csv`` or the config's ``[prices]`` table, never a bill.

Exit codes: 0; 2 for bad input (unknown or uninstalled provider, missing settings, a dataset the provider
cannot take).
"""

from __future__ import annotations

from typing import Any

import click


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if 0 < value < 0.01 else f"${value:,.2f}"


def hosting_estimate(deployer: Any) -> tuple[float | None, str]:
    """USD per hour the deployer's endpoint would cost with its current settings, and how that was found.

    Reads the settings the bundled deployers declare (``endpoint_instance_type`` / ``endpoint_instance_count``
    for instance-hour billing, ``min_inference_units`` for inference-unit hours, ``region``); a provider
    priced ``*`` in the table (local: free) gets that price. ``None`` when no price is known.
    """
    from multicloud_cv.cost import ANY, default_prices, hosting_cost_per_hour

    name = str(deployer.name)
    options = getattr(deployer, "options", None)
    region = getattr(options, "region", None)
    instance_type = getattr(options, "endpoint_instance_type", None)
    if instance_type:
        count = int(getattr(options, "endpoint_instance_count", 1) or 1)
        cost = hosting_cost_per_hour(name, str(instance_type), count, region)
        return cost, f"{count} x {instance_type} serving"
    units = getattr(options, "min_inference_units", None)
    if units:
        cost = hosting_cost_per_hour(name, "inference_unit", int(units), region)
        return cost, f"{units} inference unit(s) while the model runs, billed per hour"
    wildcard = default_prices().price(name, ANY, region)
    if wildcard is not None and wildcard.hourly:
        return wildcard.price_usd, wildcard.source
    return None, f"no hosting price known for {name}"


def prediction_estimate(provider: str) -> tuple[float | None, str]:
    """USD per 1,000 predictions where the price table bills ``provider`` per request, else ``None`` and why."""
    from multicloud_cv.cost import default_prices
    from multicloud_cv.report import BILLING_NOTES, PER_1000_UNITS

    table = default_prices()
    for row in (*table.overrides, *table.rows):
        if row.provider == provider and row.unit in PER_1000_UNITS:
            return row.price_usd, f"{row.item} per {row.unit}"
    note = BILLING_NOTES.get(provider, "billed by the hour of the endpoint")
    if provider == "local":
        return 0.0, note
    return None, f"{note}; per 1,000 images depends on throughput (mcv compare measures it)"


@click.group(name="cost")
def cost_group() -> None:
    """Cost estimates from the price table (on-demand list prices; estimates, never a bill)."""


@cost_group.command(name="estimate")
@click.option("--provider", "-p", required=True, help="The provider the run would use.")
@click.option(
    "--dataset", "-d", "dataset_path", required=True, type=click.Path(path_type=str), help="The dataset to train on."
)
@click.option("--format", "-f", "fmt", default="auto", show_default=True, help="Dataset format; detected when auto.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default: the provider's).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Provider setting; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def estimate(
    provider: str, dataset_path: str, fmt: str, epochs: int | None, options: tuple[str, ...], as_json: bool
) -> None:
    """Estimate training, hosting and prediction cost of a planned run; nothing is sent."""
    from multicloud_cv.capabilities import Task
    from multicloud_cv.config import parse_overrides
    from multicloud_cv.datasets.formats import read_dataset
    from multicloud_cv.errors import MCVError
    from multicloud_cv.interfaces import TrainingSpec
    from multicloud_cv.registry import registry

    overrides = parse_overrides(options)
    trainer = registry().trainer(provider, overrides=overrides)
    trainer.ensure_ready()
    dataset = read_dataset(dataset_path, fmt)
    spec = TrainingSpec(dataset=dataset, task=Task(dataset.task), epochs=epochs, compute=trainer.default_compute)
    plan = trainer.plan(spec)
    notes = list(plan.notes)
    hosting: float | None = None
    try:
        deployer = registry().deployer(provider, overrides=overrides)
    except MCVError as exc:  # a provider without a deployer role still has a training estimate
        notes.append(f"no hosting estimate: {exc}")
    else:
        hosting, how = hosting_estimate(deployer)
        notes.append(f"hosting: {how}")
    prediction, how = prediction_estimate(provider)
    notes.append(f"prediction: {how}")
    document = {
        "provider": provider,
        "dataset": str(dataset.root),
        "task": dataset.task,
        "train_images": sum(1 for image in dataset.images if image.split in (None, "train")),
        "epochs": epochs,
        "training_usd": plan.cost_estimate_usd,
        "hosting_per_hour_usd": hosting,
        "prediction_per_1000_usd": prediction,
        "notes": notes,
    }
    if as_json:
        from multicloud_cv.cli.output import emit_json

        emit_json(document)
        return
    click.echo(f"{provider}: {dataset.root} ({dataset.task}, {document['train_images']} training images)")
    click.echo(f"  training            {_money(plan.cost_estimate_usd)}")
    click.echo(f"  hosting per hour    {_money(hosting)}")
    click.echo(f"  per 1,000 images    {_money(prediction)}")
    for note in notes:
        click.echo(f"  - {note}")
    click.echo("  (on-demand list prices: estimates, never a bill; nothing was sent)")


def register(cli: click.Group) -> None:
    """Add ``mcv cost`` to the ``mcv`` group."""
    cli.add_command(cost_group)
