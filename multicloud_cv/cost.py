"""Prices and cost estimates: one table for every provider, each row with its source, its date and whether it was
checked against the vendor's own page.

The table is ``multicloud_cv/data/prices.csv`` with the columns ``provider, item, unit, region, price_usd,
source, as_of, verified``. ``item`` is what is billed: an instance type (``ml.p3.2xlarge``), a machine or
accelerator (``n1-standard-4``, ``NVIDIA_TESLA_T4``) or a service charge (``training``, ``inference_unit``,
``automl_image_training``); ``*`` stands for every item of the provider (the local provider costs nothing).
``unit`` says per what: ``hour`` and ``node_hour`` (per instance, machine, accelerator or node), or a count such
as ``1000_transactions``. ``region`` ``*`` means the price holds in every region. The figures come from
reference/cloud-apis.md section 6; ``verified=false`` marks third-party or recalled figures. All are on-demand
list prices in USD: estimates, never a bill.

Overrides: the ``[prices]`` table of the config file (``mcv.toml``, see :func:`multicloud_cv.config.config_file_path`)
sets a price for ``"<provider>/<item>"`` in every region or ``"<provider>/<item>/<region>"`` in one::

    [prices]
    "sagemaker/ml.p3.2xlarge" = 3.0
    "sagemaker/ml.g4dn.xlarge/eu-west-1" = 0.82

Lookup (:meth:`PriceTable.price`): an override for the region, an override for every region, the row for the
region, the row for ``*``, the provider's ``*`` item; and when no row is for the region asked, the row of another
region (its ``region`` field says which), as the nearest estimate.

Light by contract (this is the core): the standard library only, and the table is read on first use.
"""

from __future__ import annotations

import csv
import logging
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from multicloud_cv.errors import ConfigError

log = logging.getLogger(__name__)

PRICES_FILE = Path(__file__).parent / "data" / "prices.csv"
ANY = "*"
#: Units billed per hour of one instance, machine, accelerator or node.
HOURLY_UNITS = frozenset({"hour", "node_hour"})
_COLUMNS = ("provider", "item", "unit", "region", "price_usd", "source", "as_of", "verified")


@dataclass(frozen=True)
class Price:
    """One price: ``price_usd`` per ``unit`` of ``item`` at ``provider`` in ``region`` (``*``: any region)."""

    provider: str
    item: str
    unit: str
    region: str
    price_usd: float
    source: str
    as_of: str
    verified: bool = False

    @property
    def hourly(self) -> bool:
        """Whether the price is per hour (of an instance, machine, accelerator or node)."""
        return self.unit in HOURLY_UNITS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "provider": self.provider,
            "item": self.item,
            "unit": self.unit,
            "region": self.region,
            "price_usd": self.price_usd,
            "source": self.source,
            "as_of": self.as_of,
            "verified": self.verified,
        }


def _read_rows(path: Path) -> list[Price]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"price table {path} lacks the column(s) {', '.join(missing)}")
            rows = [
                Price(
                    provider=row["provider"].strip(),
                    item=row["item"].strip(),
                    unit=row["unit"].strip(),
                    region=row["region"].strip() or ANY,
                    price_usd=float(row["price_usd"]),
                    source=row["source"].strip(),
                    as_of=row["as_of"].strip(),
                    verified=row["verified"].strip().lower() == "true",
                )
                for row in reader
            ]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the price table {path}: {exc}") from exc
    return rows


class PriceTable:
    """The price rows and the user's overrides; see the module docstring for the lookup order."""

    def __init__(self, rows: Iterable[Price], overrides: Iterable[Price] = ()) -> None:
        self.rows = list(rows)
        self.overrides = list(overrides)

    def price(self, provider: str, item: str, region: str | None = None) -> Price | None:
        """The price of ``item`` at ``provider`` in ``region`` (``None``: any region), or ``None`` if unknown."""
        for candidates in (self.overrides, self.rows):
            found = _match(candidates, provider, item, region)
            if found is not None:
                return found
        wildcard = _match(self.rows, provider, ANY, region)
        if wildcard is not None:
            return replace(wildcard, item=item)
        elsewhere = [row for row in self.rows if row.provider == provider and row.item == item]
        if elsewhere:
            log.debug("no %s price for %s in %s; using %s's", provider, item, region, elsewhere[0].region)
            return elsewhere[0]
        return None

    def training_cost(
        self,
        provider: str,
        instance_type: str,
        instance_count: int,
        billable_seconds: float,
        region: str | None = None,
    ) -> float | None:
        """USD for ``instance_count`` x ``instance_type`` billed ``billable_seconds``; ``None`` if no hourly price."""
        found = self.price(provider, instance_type, region)
        if found is None or not found.hourly:
            return None
        return round(found.price_usd * max(instance_count, 0) * max(billable_seconds, 0.0) / 3600.0, 6)

    def hosting_cost_per_hour(
        self, provider: str, instance_type: str, instance_count: int, region: str | None = None
    ) -> float | None:
        """USD per hour for ``instance_count`` x ``instance_type`` serving; ``None`` without an hourly price."""
        found = self.price(provider, instance_type, region)
        if found is None or not found.hourly:
            return None
        return round(found.price_usd * max(instance_count, 0), 6)


def _match(rows: Iterable[Price], provider: str, item: str, region: str | None) -> Price | None:
    mine = [row for row in rows if row.provider == provider and row.item == item]
    if region is not None:
        for row in mine:
            if row.region == region:
                return row
    for row in mine:
        if row.region == ANY:
            return row
    if region is None and mine:
        return mine[0]
    return None


def _overrides(path: Path, base: list[Price]) -> list[Price]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}; fix the file or remove it") from exc
    table = data.get("prices", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f'{path}: [prices] must be a table of "provider/item" = price_usd')
    found: list[Price] = []
    for key, value in table.items():
        parts = str(key).split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(
                f'{path}: [prices] key \'{key}\' is not "provider/item" or "provider/item/region"; '
                'write e.g. "sagemaker/ml.p3.2xlarge" = 3.0'
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{path}: [prices] '{key}' must be a price in USD (a number >= 0), not {value!r}")
        provider, item = parts[0], parts[1]
        region = parts[2] if len(parts) == 3 else ANY
        unit = next((row.unit for row in base if row.provider == provider and row.item == item), "hour")
        found.append(Price(provider, item, unit, region, float(value), f"config file {path}", "", verified=True))
    return found


def load_prices(config_path: Path | None = None, *, use_config_file: bool = True) -> PriceTable:
    """The bundled price table with the ``[prices]`` overrides of ``config_path`` (default: the config file in use,
    :func:`multicloud_cv.config.config_file_path`; ``use_config_file=False`` reads none)."""
    rows = _read_rows(PRICES_FILE)
    path = config_path
    if path is None and use_config_file:
        from multicloud_cv.config import config_file_path

        path = config_file_path()
    overrides = _overrides(path, rows) if path is not None else []
    return PriceTable(rows, overrides)


@lru_cache(maxsize=8)
def _cached(path: str | None, mtime_ns: int) -> PriceTable:
    return load_prices(Path(path) if path else None, use_config_file=False)


def default_prices() -> PriceTable:
    """The table for the config file in use now, re-read when that file changes."""
    from multicloud_cv.config import config_file_path

    path = config_file_path()
    mtime = path.stat().st_mtime_ns if path is not None else 0
    return _cached(str(path) if path else None, mtime)


def price(provider: str, item: str, region: str | None = None) -> Price | None:
    """The price of ``item`` (e.g. ``ml.p3.2xlarge``) at ``provider`` in ``region``, overrides applied."""
    return default_prices().price(provider, item, region)


def training_cost(
    provider: str, instance_type: str, instance_count: int, billable_seconds: float, region: str | None = None
) -> float | None:
    """USD for a training job: hourly price x instances x billable seconds / 3600; ``None`` when no price is known."""
    return default_prices().training_cost(provider, instance_type, instance_count, billable_seconds, region)


def hosting_cost_per_hour(
    provider: str, instance_type: str, instance_count: int, region: str | None = None
) -> float | None:
    """USD per hour of an endpoint on ``instance_count`` x ``instance_type``; ``None`` when no price is known."""
    return default_prices().hosting_cost_per_hour(provider, instance_type, instance_count, region)
