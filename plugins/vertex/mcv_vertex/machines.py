"""Vertex AI machine types, accelerators and scale tiers as data (``data/machines.json``, with its sources).

Contracts:

* :func:`check_machine` returns the problems of one machine spec, worded as the service words them (pains.md V3:
  ``Accelerator "NVIDIA_TESLA_K80" is not supported for machine type "n1-standard-4".``): an accelerator type that
  is not a value of the SDK's ``AcceleratorType`` enum, a machine type the table does not know (a warning, not an
  error: the table is partial), an accelerator the machine family does not take or a count it does not take, a
  machine family that needs its accelerator (a2, g2, a3, TPU) without it, and an accelerator not offered in the
  location. An empty list means the spec is fine.
* :func:`worker_pools` maps a scale tier (BASIC, BASIC_GPU, BASIC_TPU, STANDARD_1, PREMIUM_1, or CUSTOM with an
  explicit machine type, accelerator and replica count) to worker pool machine specs; replica counts above 1 are
  distributed training (pool 0 is the chief, pool 1 the workers, as Vertex numbers them).
* :func:`quota_metric` names the quota metric of an accelerator (pains.md V1), for messages and the quota check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from multicloud_cv.errors import ConfigError

SCALE_TIERS = ("BASIC", "BASIC_GPU", "BASIC_TPU", "STANDARD_1", "PREMIUM_1", "CUSTOM")


@dataclass(frozen=True)
class Pool:
    """One worker pool: machine type, accelerator (or none), replicas."""

    machine_type: str
    replica_count: int = 1
    accelerator_type: str | None = None
    accelerator_count: int = 0
    tpu_topology: str | None = None

    def machine_spec(self) -> dict[str, Any]:
        """The ``MachineSpec`` fields of this pool (snake_case, as the proto-plus types take them)."""
        spec: dict[str, Any] = {"machine_type": self.machine_type}
        if self.accelerator_type:
            spec["accelerator_type"] = self.accelerator_type
            spec["accelerator_count"] = self.accelerator_count
        if self.tpu_topology:
            spec["tpu_topology"] = self.tpu_topology
        return spec


@cache
def data() -> dict[str, Any]:
    """The data file."""
    text = resources.files("mcv_vertex").joinpath("data/machines.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def sdk_accelerators() -> frozenset[str]:
    """Every ``AcceleratorType`` value of the installed SDK (names, without UNSPECIFIED)."""
    from google.cloud.aiplatform_v1.types import AcceleratorType

    members: Any = AcceleratorType
    return frozenset(member.name for member in members if member.name != "ACCELERATOR_TYPE_UNSPECIFIED")


def _family(machine_type: str) -> tuple[str, dict[str, Any]] | None:
    for name, family in data()["families"].items():
        if machine_type in family["machine_types"]:
            return name, family
    return None


def check_machine(
    machine_type: str, accelerator_type: str | None, accelerator_count: int, location: str | None
) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for one machine spec in ``location`` (see the module docstring)."""
    errors: list[str] = []
    warnings: list[str] = []
    accelerator = accelerator_type or None
    if accelerator and accelerator not in sdk_accelerators():
        known = ", ".join(sorted(sdk_accelerators()))
        return [f'"{accelerator}" is not an accelerator type of the Vertex AI API; use one of: {known}'], []
    if accelerator and accelerator_count < 1:
        errors.append(f'accelerator "{accelerator}" needs accelerator_count of at least 1')
    found = _family(machine_type)
    if found is None:
        warnings.append(f'machine type "{machine_type}" is not in mcv\'s table (data/machines.json): not checked')
    else:
        _, family = found
        allowed: dict[str, list[int]] = dict(family.get("accelerators") or {})
        if family.get("accelerator"):
            counts = family["machine_types"]
            allowed = {family["accelerator"]: [counts[machine_type]]}
        if accelerator is None:
            if family.get("required"):
                wanted = ", ".join(f"{a} x {c[0]}" for a, c in allowed.items())
                errors.append(f'machine type "{machine_type}" needs its accelerator: set accelerator_type ({wanted})')
        elif accelerator not in allowed:
            errors.append(f'Accelerator "{accelerator}" is not supported for machine type "{machine_type}".')
        elif accelerator_count not in allowed[accelerator]:
            counts_text = ", ".join(str(c) for c in allowed[accelerator])
            errors.append(
                f'machine type "{machine_type}" takes {counts_text} x "{accelerator}", not {accelerator_count}'
            )
    regions: dict[str, list[str]] = data()["regions"]
    if accelerator and location:
        if location not in regions:
            warnings.append(f"location {location} is not in mcv's accelerator table: availability not checked")
        elif accelerator not in regions[location]:
            where = sorted(r for r, offered in regions.items() if accelerator in offered)
            offered = ", ".join(where) or "none known"
            errors.append(f'accelerator "{accelerator}" is not offered in {location}; it is in: {offered}')
    return errors, warnings


def tpu_topology(machine_type: str) -> str | None:
    """The TPU topology a TPU v5e machine type needs (``ct5lp-hightpu-4t`` -> ``2x2``), else ``None``."""
    for family in data()["families"].values():
        topology = family.get("tpu_topology") or {}
        if machine_type in topology:
            return str(topology[machine_type])
    return None


def worker_pools(
    scale_tier: str,
    machine_type: str | None = None,
    accelerator_type: str | None = None,
    accelerator_count: int = 0,
    replica_count: int = 1,
) -> list[Pool]:
    """The worker pools of a scale tier; CUSTOM (or any explicit ``machine_type``) takes the explicit values."""
    tier = scale_tier.strip().upper()
    if tier not in SCALE_TIERS:
        raise ConfigError(f"scale_tier '{scale_tier}' must be one of {', '.join(SCALE_TIERS)}")
    if tier == "CUSTOM" or machine_type:
        if not machine_type:
            raise ConfigError("scale_tier CUSTOM needs machine_type (e.g. -o machine_type=n1-standard-8)")
        if replica_count < 1:
            raise ConfigError("replica_count must be at least 1")
        chief = Pool(machine_type, 1, accelerator_type, accelerator_count, tpu_topology(machine_type))
        if replica_count == 1:
            return [chief]
        return [chief, Pool(machine_type, replica_count - 1, accelerator_type, accelerator_count, chief.tpu_topology)]
    pools = []
    for entry in data()["scale_tiers"][tier]["pools"]:
        pools.append(
            Pool(
                machine_type=entry["machine_type"],
                replica_count=int(entry["replica_count"]),
                accelerator_type=entry.get("accelerator_type"),
                accelerator_count=int(entry.get("accelerator_count", 0)),
            )
        )
    return pools


def with_accelerator(pool: Pool, accelerator: str) -> Pool:
    """``pool`` moved to ``accelerator`` (a capacity fallback): the same machine when its family takes it, else the
    smallest machine of the family built around it (NVIDIA_L4 -> g2-standard-4, TPU_V5_LITEPOD -> ct5lp-hightpu-1t)."""
    count = max(1, pool.accelerator_count)
    found = _family(pool.machine_type)
    if found is not None:
        _, family = found
        allowed = dict(family.get("accelerators") or {})
        if accelerator in allowed and count in allowed[accelerator]:
            return Pool(pool.machine_type, pool.replica_count, accelerator, count, pool.tpu_topology)
    for family in data()["families"].values():
        if family.get("accelerator") == accelerator:
            machine, take = next(iter(family["machine_types"].items()))
            return Pool(machine, pool.replica_count, accelerator, int(take), tpu_topology(machine))
        allowed = dict(family.get("accelerators") or {})
        if accelerator in allowed:
            machines = family["machine_types"]
            machine = machines[0] if isinstance(machines, list) else next(iter(machines))
            take = count if count in allowed[accelerator] else allowed[accelerator][0]
            return Pool(machine, pool.replica_count, accelerator, int(take), tpu_topology(machine))
    return Pool(pool.machine_type, pool.replica_count, accelerator, count, pool.tpu_topology)


def compute_kind(pools: list[Pool]) -> str:
    """``tpu``, ``gpu`` or ``cpu``: what the chief pool runs on."""
    accelerator = pools[0].accelerator_type or ""
    return "tpu" if accelerator.startswith("TPU") else "gpu" if accelerator else "cpu"


def quota_metric(accelerator_type: str | None) -> str | None:
    """The ``aiplatform.googleapis.com/custom_model_training_*`` quota metric of an accelerator."""
    if not accelerator_type:
        return None
    metrics: dict[str, str] = data()["quota_metrics"]
    return metrics.get(accelerator_type)
