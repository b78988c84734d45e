"""Shared job and endpoint states.

Every provider maps its own status words into these enums through a table
(``native -> shared``); the provider's word is always kept beside the shared one as
``native_state``.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Life cycle of a training job, the same for every provider."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def is_terminal(self) -> bool:
        """True for states a job never leaves."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class EndpointState(StrEnum):
    """Life cycle of a serving endpoint, the same for every provider."""

    CREATING = "CREATING"
    READY = "READY"
    FAILED = "FAILED"
    DELETED = "DELETED"

    def is_terminal(self) -> bool:
        """True for states that need no more waiting (READY can still be deleted later)."""
        return self in (EndpointState.READY, EndpointState.FAILED, EndpointState.DELETED)


def map_state(table: dict[str, JobState], native: str, default: JobState = JobState.RUNNING) -> JobState:
    """Translate a provider's status word through its table; unknown words are ``default``."""
    return table.get(native, default)
