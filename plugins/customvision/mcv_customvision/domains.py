"""Custom Vision's domains as data (``data/domains.json``), and the choice of one by name for a task.

A domain is the base model a project trains from; its ``type`` (``Classification`` or ``ObjectDetection``) decides
whether the project takes image-level tags or regions, and only the compact domains export (pains.md A6: "Only
compact domains export"). Users name a domain (``-o domain="General (compact)"``); the provider resolves the name
against the service's own GetDomains answer at run time (:func:`pick`), so the ids in the data file are only what
the emulator serves.

Contracts: :data:`DOMAINS` every domain with its platforms; :func:`domain_type` maps a task to the type;
:func:`pick` finds ``name`` (case-insensitive) among domains of that type or raises :class:`ConfigError` listing
the names there are; :func:`default_name` is ``General (compact)`` for both types (exportable, so ``mcv export``
works on every model trained with the defaults).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from multicloud_cv.errors import ConfigError

CLASSIFICATION = "Classification"
OBJECT_DETECTION = "ObjectDetection"
DEFAULT_DOMAIN = "General (compact)"


@dataclass(frozen=True)
class Domain:
    """One domain as GetDomains describes it."""

    id: str
    name: str
    type: str
    exportable: bool
    enabled: bool = True
    exportable_platforms: tuple[str, ...] = ()

    def as_wire(self) -> dict[str, Any]:
        """The service's JSON for this domain (what GetDomains answers)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "exportable": self.exportable,
            "enabled": self.enabled,
            "exportablePlatforms": list(self.exportable_platforms),
            "modelInformation": None,
        }


@cache
def _load() -> tuple[Domain, ...]:
    data = json.loads(resources.files("mcv_customvision").joinpath("data/domains.json").read_text(encoding="utf-8"))
    platforms = tuple(data["compact_platforms"])
    return tuple(
        Domain(
            id=d["id"],
            name=d["name"],
            type=d["type"],
            exportable=bool(d["exportable"]),
            exportable_platforms=platforms if d["exportable"] else (),
        )
        for d in data["domains"]
    )


def domains() -> tuple[Domain, ...]:
    """Every domain of the data file."""
    return _load()


def domain_type(task: str) -> str:
    """``ObjectDetection`` for ``detection``, ``Classification`` for the classification tasks."""
    return OBJECT_DETECTION if task == "detection" else CLASSIFICATION


def pick(name: str, task: str, available: Iterable[Mapping[str, Any]] | None = None) -> Mapping[str, Any]:
    """The domain called ``name`` of the task's type among ``available`` (GetDomains' answer as dicts with
    ``id, name, type, exportable``; default: the data file); :class:`ConfigError` naming the choices otherwise."""
    wanted = domain_type(task)
    pool = list(available) if available is not None else [d.as_wire() for d in domains()]
    candidates = [d for d in pool if d.get("type") == wanted and d.get("enabled", True) is not False]
    for candidate in candidates:
        if str(candidate.get("name", "")).casefold() == name.strip().casefold():
            return candidate
    names = ", ".join(sorted({str(d.get("name")) for d in candidates}))
    raise ConfigError(f"domain '{name}' is not a {wanted} domain of this resource; choose one of: {names}")
