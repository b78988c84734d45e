"""Removing what runs left behind: expired endpoints, a run's endpoints, or every live endpoint.

Endpoints are what bill by the hour whether called or not, so they are what cleanup deletes,
through each provider's own :meth:`~multicloud_cv.interfaces.Deployer.undeploy` (idempotent;
SageMaker's undeploy deletes the endpoint, its config and its model). A failure on one endpoint
is reported and the others are still cleaned. Nothing here imports a cloud SDK: the registry loads
only the providers that own a matching record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from multicloud_cv.errors import BadInput, MCVError
from multicloud_cv.runs import EndpointRecord, RunStore

log = logging.getLogger(__name__)


@dataclass
class CleanupResult:
    """What :func:`cleanup` did: endpoints deleted, endpoints that could not be, and what it would do (dry run)."""

    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)
    removed_jobs: list[str] = field(default_factory=list)


def select(
    store: RunStore, run_id: str | None = None, everything: bool = False, now: float | None = None
) -> list[EndpointRecord]:
    """The live endpoints cleanup would delete: a run's (``run_id``), every one (``everything``), else expired ones."""
    if run_id is not None and everything:
        raise BadInput("--run and --all exclude each other: pick one")
    moment = time.time() if now is None else now
    live = store.endpoints()
    if run_id is not None:
        chosen = [e for e in live if e.run_id == run_id]
        if not chosen and not any(j.run_id == run_id for j in store.jobs()):
            raise BadInput(f"no run '{run_id}' in the run records; see `mcv status`")
        return chosen
    if everything:
        return live
    return [e for e in live if e.expires_at is not None and e.expires_at <= moment]


def cleanup(
    store: RunStore,
    deployer_for: Callable[[str], Any],
    run_id: str | None = None,
    everything: bool = False,
    dry_run: bool = False,
    now: float | None = None,
    trainer_for: Callable[[str], Any] | None = None,
) -> CleanupResult:
    """Undeploy the endpoints :func:`select` picks; ``deployer_for(provider)`` gives each provider's deployer.

    With ``trainer_for`` (``mcv cleanup --models``), also remove what the run's finished jobs (or, with
    ``everything``, all finished jobs) left at their provider (:meth:`Trainer.remove`: model versions,
    datasets, projects), after their endpoints are gone.
    """
    result = CleanupResult()
    for record in select(store, run_id, everything, now):
        if dry_run:
            result.planned.append(record.id)
            continue
        try:
            deployer_for(record.provider).undeploy(record.id)
        except MCVError as exc:
            log.warning("could not delete endpoint %s (%s): %s", record.id, record.provider, exc)
            result.failed[record.id] = str(exc)
            continue
        result.deleted.append(record.id)
    if trainer_for is not None and (run_id is not None or everything):
        _remove_jobs(store, trainer_for, run_id, dry_run, result)
    return result


def _remove_jobs(
    store: RunStore, trainer_for: Callable[[str], Any], run_id: str | None, dry_run: bool, result: CleanupResult
) -> None:
    from multicloud_cv.states import JobState

    for job in store.jobs():
        if (run_id is not None and job.run_id != run_id) or not JobState(job.state).is_terminal():
            continue
        if job.native_id is None or (job.native_state or "").endswith("(removed)"):
            continue
        if dry_run:
            result.planned.append(job.id)
            continue
        try:
            if trainer_for(job.provider).remove(job.id):
                result.removed_jobs.append(job.id)
        except MCVError as exc:
            log.warning("could not remove job %s's resources (%s): %s", job.id, job.provider, exc)
            result.failed[job.id] = str(exc)
